using Engine.Core;
using Engine.Tools;

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

    /// <summary>
    /// Teacher forcing: every step starts from diffusers' own previous sample with its recorded model
    /// output. A second pass perturbs those inputs by one float32 rounding (relative 2^-24 N(0,1)) to
    /// measure how much the step amplifies input rounding; steps that cancel strongly (cosine schedules
    /// near sigma_max ~ 2e4) amplify diffusers' own float32 rounding, and the tolerance is
    /// 1e-5 relative plus 10 times that measured amplification.
    /// </summary>
    [TestCaseSource(nameof(Cases))]
    public void TeacherForced(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        using var f = new SchedulerFixture(name);
        int calls = f.Json.GetProperty("num_model_calls").GetInt32();
        var clean = ForcedPass(device, f, calls, perturb: false, out double worstInput);
        var noisy = ForcedPass(device, f, calls, perturb: true, out _);
        double worst = 0;
        for (int i = 0; i < calls; i++)
        {
            var expected = f.Row("samples", i);
            var input = i > 0 ? f.Row("samples", i - 1) : f.Tensors.ReadFloats("x_T");
            double err = StepError(clean[i], expected, input);
            double amplification = StepError(noisy[i], clean[i], input);
            double tol = 1e-5 + 10 * amplification;
            worst = Math.Max(worst, err);
            Assert.That(err, Is.LessThanOrEqualTo(tol), $"samples[{i}] (call {i}, timestep {f.Tensors.ReadFloats("timesteps")[Math.Min(i, f.Tensors.Info("timesteps").Shape[0] - 1)]}, rounding amplification {amplification:E2})");
        }
        Assert.That(worstInput, Is.LessThanOrEqualTo(1e-5), "model_inputs (scale_model_input)");
        TestContext.Out.WriteLine($"{name} on {kind}: worst sample error {worst:E2}, worst input error {worstInput:E2}");
    }

    private static float[][] ForcedPass(Device device, SchedulerFixture f, int calls, bool perturb, out double worstInput)
    {
        using var sch = SchedulerFactory.Create(f.Config, f.Steps);
        Assert.That(sch.CallCount, Is.EqualTo(calls), "model calls");
        var rng = new Random(1234);
        float[] Perturb(float[] v)
        {
            if (!perturb) return v;
            var r = new float[v.Length];
            for (int k = 0; k < v.Length; k++) r[k] = (float)(v[k] * (1 + Math.Pow(2, -24) * NormalSample(rng)));
            return r;
        }
        using var x = device.Upload(Perturb(f.Tensors.ReadFloats("x_T")), f.SampleShape);
        using var scaled = device.Allocate(f.SampleShape);
        var result = new float[calls][];
        worstInput = 0;
        for (int i = 0; i < calls; i++)
        {
            if (i > 0) device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(Perturb(f.Row("samples", i - 1)).AsSpan()), x);
            device.Affine(x, scaled, (float)sch.InputScale(i), 0f);
            worstInput = Math.Max(worstInput, Fixtures.RelativeError(scaled.ToArray(), f.Row("model_inputs", i)));
            using var output = device.Upload(Perturb(f.Row("model_outputs", i)), f.SampleShape);
            sch.Step(output, i, x);
            result[i] = x.ToArray();
        }
        return result;
    }

    private static double NormalSample(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());

    /// <summary>max |got - expected| over the largest magnitude of the expected sample and the step's input.</summary>
    internal static double StepError(float[] got, float[] expected, float[] input)
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
        var got = x.ToArray();
        // Arithmetic sensitivity: diffusers updates as x + d dt in float32, so each step's output carries
        // rounding of the size of its input (x ~ 2e4 at sigma_max of cosine schedules). Model that by
        // adding 2^-24 x_in z to every step's output of a second run.
        using var xp = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        using var prev = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        using var z = device.Allocate(f.SampleShape);
        using var sch2 = SchedulerFactory.Create(f.Config, f.Steps);
        Sampler.Run(sch2, model, xp, i =>
        {
            device.RandomNormal(z, 77, 0, i);
            device.Mul(prev, z, z);
            device.LinearCombination(xp, [xp, z], [1f, (float)Math.Pow(2, -24)]);
            device.Copy(xp, prev);
        });
        var perturbed = xp.ToArray();
        var final = f.Tensors.ReadFloats("final");
        double maxErr = 0, scale = 0, rounding = 0;
        for (int k = 0; k < final.Length; k++)
        {
            maxErr = Math.Max(maxErr, Math.Abs(got[k] - final[k]));
            scale = Math.Max(scale, Math.Abs(final[k]));
            rounding = Math.Max(rounding, Math.Abs(perturbed[k] - got[k]));
        }
        double tol = 1e-4 * scale + 20 * f.SensitivityMaxAbs + 20 * rounding;
        TestContext.Out.WriteLine($"{name} on {kind}: max |final - diffusers| = {maxErr:E2} (tolerance {tol:E2}, arithmetic sensitivity {rounding:E2})");
        Assert.That(maxErr, Is.LessThanOrEqualTo(tol), "final vs diffusers");
    }
}
