using Engine.Core;

namespace Engine.Sampling.Tests;

/// <summary>
/// Every scheduler fixture of diffusers 0.31: the time grid, teacher-forced trajectories (recorded model
/// outputs fed back) and closed-loop runs on the analytic Gaussian model.
/// </summary>
[TestFixture]
public class FixtureTests
{
    private static IEnumerable<TestCaseData> Cases() =>
        SchedulerFixture.All().SelectMany(n => TestDevices.Kinds.Select(k => new TestCaseData(n, k).SetName($"{{m}}({n},{k})")));

    private static IEnumerable<string> Names() => SchedulerFixture.All();

    [Test]
    public void FixturesArePresent()
    {
        Fixtures.RequireRoot();
        Assert.That(SchedulerFixture.All().Count(), Is.GreaterThan(0), "scheduler fixtures");
    }

    [TestCaseSource(nameof(Names))]
    public void TimeGrid(string name)
    {
        using var f = new SchedulerFixture(name);
        using var sch = SchedulerFactory.Create(f.Config, f.Steps);
        if (f.Tensors.Contains("alphas_cumprod"))
            Assert.That(Fixtures.RelativeError(sch.Training.AlphasCumprod.Select(v => (float)v).ToArray(), f.Tensors.ReadFloats("alphas_cumprod")), Is.LessThanOrEqualTo(1e-6), "alphas_cumprod");
        var ts = f.Tensors.ReadFloats("timesteps");
        Assert.That(sch.Timesteps, Has.Length.EqualTo(ts.Length), "timestep count");
        Assert.That(Fixtures.RelativeError(sch.Timesteps.Select(v => (float)v).ToArray(), ts), Is.LessThanOrEqualTo(1e-5), "timesteps");
        if (f.Tensors.Contains("sigmas"))
        {
            var sg = f.Tensors.ReadFloats("sigmas");
            Assert.That(sch.Sigmas, Is.Not.Null, "sigmas");
            Assert.That(sch.Sigmas!, Has.Length.EqualTo(sg.Length), "sigma count");
            Assert.That(Fixtures.RelativeError(sch.Sigmas!.Select(v => (float)v).ToArray(), sg), Is.LessThanOrEqualTo(1e-5), "sigmas");
        }
        Assert.That(sch.InitNoiseSigma, Is.EqualTo(f.Json.GetProperty("init_noise_sigma").GetDouble()).Within(1e-3).Percent, "init_noise_sigma");
        var exact = f.Json.GetProperty("exact");
        var (a0, b0) = sch.InitialCoordinates;
        var (a1, b1) = sch.FinalCoordinates;
        // The fixture states endpoints in its own coordinates; compare the ratio b/a (noise level).
        Assert.That(b0 / a0, Is.EqualTo(exact.GetProperty("b0").GetDouble() / exact.GetProperty("a0").GetDouble()).Within(1e-4).Percent, "start noise level");
        Assert.That(b1 / a1, Is.EqualTo(exact.GetProperty("b1").GetDouble() / exact.GetProperty("a1").GetDouble()).Within(1e-9 + 1e-6 * (b1 / a1)), "end noise level");
    }

    [TestCaseSource(nameof(Cases))]
    public void TeacherForced(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        using var f = new SchedulerFixture(name);
        using var sch = SchedulerFactory.Create(f.Config, f.Steps);
        int calls = f.Json.GetProperty("num_model_calls").GetInt32();
        Assert.That(sch.CallCount, Is.EqualTo(calls), "model calls");
        using var x = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        using var scaled = device.Allocate(f.SampleShape);
        double worst = 0, worstInput = 0;
        for (int i = 0; i < calls; i++)
        {
            if (i > 0) device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.Row("samples", i - 1).AsSpan()), x);
            device.Affine(x, scaled, (float)sch.InputScale(i), 0f);
            worstInput = Math.Max(worstInput, Fixtures.RelativeError(scaled.ToArray(), f.Row("model_inputs", i)));
            // Teacher forcing: every step starts from diffusers' own previous sample.
            if (i > 0) device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.Row("samples", i - 1).AsSpan()), x);
            using var output = device.Upload(f.Row("model_outputs", i), f.SampleShape);
            sch.Step(output, i, x);
            // Relative to the larger of the step's input and output magnitudes: a float32 update cannot
            // be more exact than the rounding of its input (sigma_max ~ 2e4 for cosine schedules).
            double err = StepError(x.ToArray(), f.Row("samples", i), i > 0 ? f.Row("samples", i - 1) : f.Tensors.ReadFloats("x_T"));
            worst = Math.Max(worst, err);
            Assert.That(err, Is.LessThanOrEqualTo(1e-5), $"samples[{i}] (timestep {sch.Timesteps[i]})");
        }
        Assert.That(worstInput, Is.LessThanOrEqualTo(1e-5), "model_inputs (scale_model_input)");
        TestContext.Out.WriteLine($"{name} on {kind}: worst sample error {worst:E2}, worst input error {worstInput:E2}");
    }

    private static double StepError(float[] got, float[] expected, float[] input)
    {
        double maxErr = 0, scale = 0;
        for (int k = 0; k < got.Length; k++)
        {
            double e = Math.Abs((double)got[k] - expected[k]);
            if (double.IsNaN(e)) return double.PositiveInfinity;
            maxErr = Math.Max(maxErr, e);
            scale = Math.Max(scale, Math.Max(Math.Abs(expected[k]), Math.Abs(input[k])));
        }
        return maxErr / scale;
    }

    [TestCaseSource(nameof(Cases))]
    public void ClosedLoop(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        using var f = new SchedulerFixture(name);
        using var sch = SchedulerFactory.Create(f.Config, f.Steps);
        var shape = f.Tensors.Info("mu").Shape;
        using var model = new AnalyticGaussian(device, f.Tensors.ReadFloats("mu"), f.Tensors.ReadFloats("s"), shape, f.Config);
        using var x = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        Sampler.Run(sch, model, x);
        var final = f.Tensors.ReadFloats("final");
        var got = x.ToArray();
        double maxErr = 0, scale = 0;
        for (int k = 0; k < final.Length; k++) { maxErr = Math.Max(maxErr, Math.Abs(got[k] - final[k])); scale = Math.Max(scale, Math.Abs(final[k])); }
        double tol = 1e-4 * scale + 20 * f.SensitivityMaxAbs;
        TestContext.Out.WriteLine($"{name} on {kind}: max |final - diffusers| = {maxErr:E2} (tolerance {tol:E2})");
        Assert.That(maxErr, Is.LessThanOrEqualTo(tol), "final vs diffusers");
    }
}
