using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Sampling.Schedulers;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>
/// Every case of <c>fewstep/</c> (diffusers 0.31 with every draw recorded as <c>step_noise</c>): LCM, TCD, Turbo-style
/// and other ancestral Euler, DDPM, DDIM eta 1, SDE-DPM-Solver++ orders 1 and 2, KDPM2 ancestral. The grid and the
/// draw count, teacher forcing (diffusers' previous sample and model output with the recorded draws) and the
/// closed loop on the analytic Gaussian, whose final sample must match within 1e-4 of the sample scale plus 20
/// times the case's recorded sensitivity (the tolerance for the scheduler fixtures).
/// </summary>
[TestFixture]
public class FewStepFixtureTests
{
    private static IEnumerable<string> Names() => Fixtures.Root is null ? [] : Fixtures.Names("fewstep").Where(n => n != "index");

    private static IEnumerable<TestCaseData> Cases() =>
        Names().SelectMany(n => TestDevices.Kinds.Select(k => new TestCaseData(n, k).SetName($"{{m}}({n},{k})")));

    private sealed class Case : IDisposable
    {
        public Case(string name)
        {
            Json = Fixtures.Json($"fewstep/{name}.json", SchedulerConfig.SanitizeJson);
            Path = System.IO.Path.Combine(Fixtures.RequireRoot(), "fewstep", name + ".safetensors");
            Tensors = SafetensorsFile.Open(Path);
            var config = SchedulerConfig.Parse(Json.GetProperty("scheduler_config"), Json.GetProperty("scheduler_class").GetString());
            // step(eta=...) and set_timesteps(timesteps=...) are call arguments, recorded beside the config.
            double? eta = Json.GetProperty("step_kwargs").TryGetProperty("eta", out var e) ? e.GetDouble() : null;
            int[]? custom = Json.GetProperty("set_timesteps_kwargs").TryGetProperty("timesteps", out var t) ? t.EnumerateArray().Select(v => v.GetInt32()).ToArray() : null;
            Config = config with { Eta = eta, CustomTimesteps = custom };
            Steps = Json.GetProperty("num_inference_steps").GetInt32();
        }

        public JsonElement Json { get; }
        public string Path { get; }
        public SafetensorsFile Tensors { get; }
        public SchedulerConfig Config { get; }
        public int Steps { get; }
        public double Sensitivity => Json.GetProperty("sensitivity_1e-6").GetProperty("max_abs").GetDouble();
        public int[] SampleShape => Tensors.Info("noise").Shape.ToArray();

        public RecordedNoise Draws()
        {
            var shape = Tensors.Info("step_noise").Shape;
            return new RecordedNoise(Tensors.ReadFloats("step_noise"), shape[0], (int)Tensor.ShapeLength(shape.AsSpan(1)));
        }

        public void Dispose() => Tensors.Dispose();
    }

    [Test]
    public void FixturesArePresent()
    {
        Fixtures.RequireRoot();
        Assert.That(Names().Count(), Is.EqualTo(41), "fewstep scheduler cases");
    }

    [TestCaseSource(nameof(Names))]
    public void GridAndDrawCount(string name)
    {
        using var c = new Case(name);
        using var sch = SchedulerFactory.Create(c.Config, c.Steps);
        var ts = c.Tensors.ReadFloats("model_timesteps");
        Assert.That(sch.CallCount, Is.EqualTo(c.Json.GetProperty("num_model_calls").GetInt32()), "model calls");
        Assert.That(Fixtures.RelativeError(sch.Timesteps.Select(v => (float)v).ToArray(), ts), Is.LessThanOrEqualTo(1e-5), "model timesteps");
        Assert.That(sch.NoiseDraws, Is.EqualTo(c.Json.GetProperty("num_draws").GetInt32()), "draws");
        Assert.That(sch.InitNoiseSigma, Is.EqualTo(c.Json.GetProperty("init_noise_sigma").GetDouble()).Within(1e-4).Percent, "init_noise_sigma");
        if (sch is LcmScheduler lcm)
        {
            var skip = c.Tensors.ReadFloats("lcm_c_skip");
            var cout = c.Tensors.ReadFloats("lcm_c_out");
            for (int i = 0; i < sch.CallCount; i++)
            {
                var (s, o) = lcm.BoundaryScalings(sch.Timesteps[i]);
                Assert.That((float)s, Is.EqualTo(skip[i]), $"c_skip at call {i}");
                Assert.That((float)o, Is.EqualTo(cout[i]), $"c_out at call {i}");
            }
        }
        if (sch is TcdScheduler tcd)
        {
            var s = c.Tensors.ReadFloats("tcd_timestep_s");
            for (int i = 0; i < sch.CallCount; i++) Assert.That(tcd.StepTarget(i), Is.EqualTo((int)s[i]), $"s at call {i}");
        }
    }

    /// <summary>Each step from diffusers' previous sample with its recorded model output and the recorded draws in order.</summary>
    [TestCaseSource(nameof(Cases))]
    public void TeacherForced(string name, string kind)
    {
        using var c = new Case(name);
        var device = TestDevices.Get(kind);
        using var sch = SchedulerFactory.Create(c.Config, c.Steps);
        sch.Noise = c.Draws();
        var outputs = c.Tensors.ReadFloats("model_outputs");
        var samples = c.Tensors.ReadFloats("samples");
        int len = (int)Tensor.ShapeLength(c.SampleShape);
        var previous = c.Tensors.ReadFloats("x_T");
        using var x = device.Allocate(c.SampleShape);
        using var output = device.Allocate(c.SampleShape);
        for (int i = 0; i < sch.CallCount; i++)
        {
            device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(previous.AsSpan()), x);
            device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(outputs.AsSpan(i * len, len)), output);
            sch.Step(output, i, x);
            var want = samples.AsSpan(i * len, len).ToArray();
            // diffusers steps in float32 (its 1 - abar_t / abar_prev cancels; x0 = (x - s eps) / a at sigma 14.6
            // amplifies the input's rounding), so the bound is 1e-5 of the larger of the step's input and output.
            double err = MaxAbs(x.ToArray(), want), scale = Math.Max(1, Math.Max(want.Max(Math.Abs), previous.Max(Math.Abs)));
            Assert.That(err, Is.LessThanOrEqualTo(1e-5 * scale), $"sample after call {i}");
            previous = want;
        }
        Assert.That(((RecordedNoise)sch.Noise).Used, Is.EqualTo(c.Json.GetProperty("num_draws").GetInt32()), "draws consumed");
    }

    /// <summary>The whole run on the analytic model from the recorded noise and draws, as <c>engine solver-bench</c> runs it.</summary>
    [TestCaseSource(nameof(Cases))]
    public void ClosedLoopFinal(string name, string kind)
    {
        using var c = new Case(name);
        var device = TestDevices.Get(kind);
        using var sch = SchedulerFactory.Create(c.Config, c.Steps);
        var r = SolverBench.Run(sch, name, c.Path, device);
        var want = c.Tensors.ReadFloats("final");
        double err = MaxAbs(r.Final, want), tol = 1e-4 * Math.Max(1, want.Max(Math.Abs)) + 20 * c.Sensitivity;
        TestContext.Out.WriteLine($"{name} ({kind}): max |final - diffusers| {err:E2} (tolerance {tol:E2})");
        Assert.That(err, Is.LessThanOrEqualTo(tol));
    }

    [Test]
    public void TooFewRecordedDrawsFailBeforeSampling()
    {
        using var c = new Case("tcd_sl_eps_g0p3_n4");
        using var sch = SchedulerFactory.Create(c.Config, c.Steps);
        var noise = new RecordedNoise(new float[2 * (int)Tensor.ShapeLength(c.SampleShape)], 2, (int)Tensor.ShapeLength(c.SampleShape));
        var e = Assert.Throws<ArgumentException>(() => noise.Require(sch.NoiseDraws, "draws.safetensors", "TCDScheduler"));
        Assert.That(e!.Message, Does.Contain("draws.safetensors").And.Contain("2 draws").And.Contain("makes 3"));
    }

    [Test]
    public void EtaAndCustomTimestepsAreRefusedWhereDiffusersHasNone()
    {
        var euler = SchedulerConfig.ParseJson("{}", EulerAncestralScheduler.DiffusersClass);
        var e1 = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(euler with { Eta = 0.5 }, 4));
        Assert.That(e1!.Message, Does.Contain("takes no eta").And.Contain("TCDScheduler"));
        var e2 = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(euler with { CustomTimesteps = [999, 500] }, 2));
        Assert.That(e2!.Message, Does.Contain("custom timesteps").And.Contain("LCMScheduler"));
        var lcm = SchedulerConfig.ParseJson("{}", LcmScheduler.DiffusersClass);
        Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(lcm with { CustomTimesteps = [500, 999] }, 2), "ascending");
        Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(lcm with { CustomTimesteps = [999, 500] }, 3), "count");
        Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(SchedulerConfig.ParseJson("{}", TcdScheduler.DiffusersClass) with { Eta = 1.5 }, 4), "gamma > 1");
    }

    [Test]
    public void ShortNamesLcmAndTcdRunOnAModelConfig()
    {
        var model = SchedulerConfig.ParseJson("""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"steps_offset":1,"set_alpha_to_one":false}""", DdimScheduler.DiffusersClass);
        using var lcm = SamplerNames.Create(model, "lcm_diffusers", null, 4);
        Assert.That(lcm, Is.InstanceOf<LcmScheduler>());
        Assert.That(lcm.Timesteps, Is.EqualTo(new double[] { 999, 759, 499, 259 }));
        using var tcd = SamplerNames.Create(model with { Eta = 0.5 }, "tcd", null, 4);
        Assert.That(((TcdScheduler)tcd).Gamma, Is.EqualTo(0.5));
        Assert.That(tcd.NoiseDraws, Is.EqualTo(3));
        using var tcdDefault = SamplerNames.Create(model, "tcd", null, 4);
        Assert.That(((TcdScheduler)tcdDefault).Gamma, Is.EqualTo(TcdScheduler.DefaultGamma));
    }

    private static double MaxAbs(float[] a, float[] b)
    {
        double m = 0;
        for (int k = 0; k < a.Length; k++) m = Math.Max(m, Math.Abs((double)a[k] - b[k]));
        return double.IsNaN(a.Sum()) ? double.NaN : m;
    }
}
