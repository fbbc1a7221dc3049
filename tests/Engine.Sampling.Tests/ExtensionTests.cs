using Engine.Core;
using Engine.Sampling.Schedulers;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>Restart sampling and heavy-ball momentum: reduce to their base solvers, and behave.</summary>
[TestFixture]
public class ExtensionTests
{
    private static readonly float[] Mu = Enumerable.Range(0, 48).Select(i => (float)Math.Cos(i * 0.3)).ToArray();
    private static readonly float[] S = Enumerable.Range(0, 48).Select(i => 0.2f + 0.015f * i).ToArray();

    private static SchedulerConfig Cfg(string cls, string extra = "") => SchedulerConfig.ParseJson(
        """{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"use_karras_sigmas":true""" + extra + "}", cls);

    private static float[] Run(Scheduler sch, ulong seed = 3)
    {
        var device = TestDevices.Get("cpu");
        sch.Noise ??= new PhiloxNoise(seed);
        using var model = new AnalyticGaussian(device, Mu, S, [3, 4, 4], sch.Config) { UseTimestep = false };
        using var x = device.Allocate(2, 3, 4, 4);
        Sampler.InitialNoise(sch, x, seed);
        Sampler.Run(sch, model, x);
        return x.ToArray();
    }

    [Test]
    public void RestartWithNoRepeatsIsHeun()
    {
        var cfg = Cfg("HeunDiscreteScheduler");
        using var heun = new HeunScheduler(cfg, 12);
        using var restart = new RestartScheduler(cfg, 12, [new RestartInterval(3, 0, 0.5, 2.0)]);
        Assert.That(restart.Timesteps, Is.EqualTo(heun.Timesteps));
        Assert.That(Run(restart), Is.EqualTo(Run(heun)));
    }

    [Test]
    public void RestartAddsItsCallsAndStaysOnTheDataDistribution()
    {
        var cfg = Cfg("HeunDiscreteScheduler");
        using var restart = new RestartScheduler(cfg, 12, [new RestartInterval(3, 2, 0.5, 2.0)], endAtSigmaMin: true);
        using var heun = new HeunScheduler(cfg, 12, endAtSigmaMin: true);
        Assert.That(restart.CallCount, Is.EqualTo(heun.CallCount + 2 * 3 * 2), "2 repeats of 3 Heun steps");
        var final = Run(restart);
        Assert.That(final.All(float.IsFinite), Is.True);
        // Restart is stochastic: compare statistics with the data distribution at sigma_min, not a path.
        double mean = 0;
        for (int k = 0; k < final.Length; k++) mean += (final[k] - Mu[k % 48]) / S[k % 48];
        mean /= final.Length;
        Assert.That(Math.Abs(mean), Is.LessThan(0.5), "standardised final samples are centred");
    }

    [TestCase(2)]
    [TestCase(3)]
    public void MomentumOneIsThePlainMultistepSolver(int order)
    {
        var cfg = Cfg("DPMSolverMultistepScheduler", $",\"solver_order\":{order}");
        using var plain = new DpmSolverMultistepScheduler(cfg, 15);
        using var hb = new DpmSolverMultistepScheduler(cfg, 15) { Momentum = 1.0 };
        Assert.That(Run(hb), Is.EqualTo(Run(plain)));
    }

    [Test]
    public void MomentumBelowOneChangesTheUpdateAndStaysAccurate()
    {
        var cfg = Cfg("DPMSolverMultistepScheduler", ",\"solver_order\":2,\"final_sigmas_type\":\"sigma_min\"");
        using var plain = new DpmSolverMultistepScheduler(cfg, 20);
        using var hb = new DpmSolverMultistepScheduler(cfg, 20) { Momentum = 0.8 };
        var a = Run(plain);
        var b = Run(hb);
        Assert.That(b.All(float.IsFinite), Is.True);
        Assert.That(Fixtures.RelativeError(b, a), Is.GreaterThan(1e-6), "momentum changes the path");
        Assert.That(Fixtures.RelativeError(b, a), Is.LessThan(0.05), "and stays near the plain solution");
        Assert.Throws<ArgumentOutOfRangeException>(() => hb.Momentum = 0);
    }

    [TestCase(2)]
    [TestCase(3)]
    public void GeneralizedMomentumOneIsThePlainMultistepSolver(int order)
    {
        var cfg = Cfg("DPMSolverMultistepScheduler", $",\"solver_order\":{order}");
        using var plain = new DpmSolverMultistepScheduler(cfg, 15);
        using var ghvb = new DpmSolverMultistepScheduler(cfg, 15) { GeneralizedMomentum = 1.0 };
        Assert.That(Run(ghvb), Is.EqualTo(Run(plain)));
    }

    [Test]
    public void GeneralizedMomentumBelowOneChangesTheUpdateAndStaysAccurate()
    {
        var cfg = Cfg("DPMSolverMultistepScheduler", ",\"solver_order\":2,\"final_sigmas_type\":\"sigma_min\"");
        using var plain = new DpmSolverMultistepScheduler(cfg, 20);
        using var ghvb = new DpmSolverMultistepScheduler(cfg, 20) { GeneralizedMomentum = 0.8 };
        var a = Run(plain);
        var b = Run(ghvb);
        Assert.That(b.All(float.IsFinite), Is.True);
        Assert.That(Fixtures.RelativeError(b, a), Is.GreaterThan(1e-6), "momentum changes the path");
        Assert.That(Fixtures.RelativeError(b, a), Is.LessThan(0.05), "and stays near the plain solution");
        Assert.Throws<InvalidOperationException>(() => ghvb.Momentum = 0.5);
    }

    [Test]
    public void SolverBenchWritesFinalExactAndError()
    {
        var file = Path.Combine(Fixtures.RequireRoot(), "schedulers", "dpm_ppo2_sl_eps_n10.safetensors");
        var cfg = Cfg("DPMSolverMultistepScheduler", ",\"solver_order\":2");
        var r = SolverBench.Run(cfg, 10, file, TestDevices.Get("cpu"));
        var path = Path.Combine(Path.GetTempPath(), $"solver-bench-{Guid.NewGuid():N}.safetensors");
        try
        {
            r.WriteOutput(path);
            using var f = Engine.Core.Safetensors.SafetensorsFile.Open(path);
            Assert.That(f.ReadFloats("final"), Is.EqualTo(r.Final));
            Assert.That(f.ReadFloats("exact"), Is.EqualTo(r.Exact));
            var err = f.ReadFloats("error");
            Assert.That(Math.Sqrt(err.Select(e => (double)e * e).Average()), Is.EqualTo(r.RmsError).Within(1e-6));
        }
        finally { File.Delete(path); }
    }
}

/// <summary>Noise sources and grids.</summary>
[TestFixture]
public class NoiseAndGridTests
{
    [TestCase("DDPMScheduler", ",\"clip_sample\":false")]
    [TestCase("EulerAncestralDiscreteScheduler", "")]
    [TestCase("DPMSolverMultistepScheduler", ",\"algorithm_type\":\"sde-dpmsolver++\"")]
    public void RecordedNoiseReplaysTheSameDraws(string cls, string extra)
    {
        var device = TestDevices.Get("cpu");
        var cfg = SchedulerConfig.ParseJson("""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012""" + extra + "}", cls);
        float[] mu = Enumerable.Range(0, 16).Select(i => 0.1f * i).ToArray(), s = Enumerable.Repeat(0.5f, 16).ToArray();
        float[] RunWith(INoiseSource noise)
        {
            using var sch = SchedulerFactory.Create(cfg, 8);
            sch.Noise = noise;
            using var model = new AnalyticGaussian(device, mu, s, [16], cfg);
            using var x = device.Allocate(2, 16);
            Sampler.InitialNoise(sch, x, 9);
            Sampler.Run(sch, model, x);
            return x.ToArray();
        }
        var philox = new PhiloxNoise(9);
        var draws = new List<float[]>();
        using (var z = device.Allocate(2, 16))
            for (int d = 0; d < 8; d++) { philox.Fill(z, d); draws.Add(z.ToArray()); }
        Assert.That(RunWith(new RecordedNoise(draws)), Is.EqualTo(RunWith(philox)));
        Assert.Throws<InvalidOperationException>(() => RunWith(new RecordedNoise(draws.Take(2))));
    }

    [Test]
    public void BetaInverseCdfMatchesScipy()
    {
        // scipy.stats.beta.ppf(p, 0.6, 0.6)
        Assert.That(Schedules.BetaDistribution.InverseCdf(0.5, 0.6, 0.6), Is.EqualTo(0.5).Within(1e-12));
        Assert.That(Schedules.BetaDistribution.InverseCdf(0.25, 0.6, 0.6), Is.EqualTo(BetaPpf25).Within(1e-9));
        Assert.That(Schedules.BetaDistribution.InverseCdf(0.9, 0.6, 0.6), Is.EqualTo(BetaPpf90).Within(1e-9));
        var grid = Schedules.SigmaGrids.Beta(0.03, 14.6, 10);
        Assert.That(grid[0], Is.EqualTo(14.6).Within(1e-12));
        Assert.That(grid[^1], Is.EqualTo(0.03).Within(1e-12));
        Assert.That(grid.Zip(grid.Skip(1)).All(p => p.First > p.Second), Is.True, "descending");
    }

    // Independent references: bisection on the hypergeometric series of the incomplete beta function.
    private const double BetaPpf25 = 0.17568037865269487;
    private const double BetaPpf90 = 0.9604155944112192;
}

/// <summary>Dynamic thresholding of x0.</summary>
[TestFixture]
public class ThresholdingTests
{
    [Test]
    public void QuantileClampAndScalePerSample()
    {
        var device = TestDevices.Get("cpu");
        using var x = device.Upload([0.5f, -3f, 2f, 1f, 0.1f, -0.2f, 0.3f, 0.4f], 2, 4);
        DynamicThresholding.Apply(x, 0.5, 10);
        // Row 0: |x| sorted 0.5 1 2 3, median by linear interpolation 1.5; row 1: quantile 0.25 -> s = 1.
        Assert.That(x.ToArray(), Is.EqualTo(new[] { 0.5f / 1.5f, -1f, 1f, 1f / 1.5f, 0.1f, -0.2f, 0.3f, 0.4f }).Within(1e-6));
    }

    /// <summary>With sample_max_value 1 the threshold is always 1, which diffusers documents as plain clipping to [-1, 1].</summary>
    [Test]
    public void ThresholdOneReproducesTheClippedDdimFixture()
    {
        var device = TestDevices.Get("cpu");
        using var f = new SchedulerFixture("ddim_lin_eps_clip_n20");
        var cfg = f.Config with { ClipSample = false, Thresholding = true, SampleMaxValue = 1.0 };
        using var sch = SchedulerFactory.Create(cfg, f.Steps);
        using var x = device.Upload(f.Tensors.ReadFloats("x_T"), f.SampleShape);
        for (int i = 0; i < sch.CallCount; i++)
        {
            if (i > 0) device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(f.Row("samples", i - 1).AsSpan()), x);
            using var output = device.Upload(f.Row("model_outputs", i), f.SampleShape);
            sch.Step(output, i, x);
            Assert.That(Fixtures.RelativeError(x.ToArray(), f.Row("samples", i)), Is.LessThanOrEqualTo(1e-5), $"samples[{i}]");
        }
    }

    [Test]
    public void ThresholdingRunsInTheMultistepSolvers()
    {
        var device = TestDevices.Get("cpu");
        foreach (var (cls, extra) in new[] { ("DPMSolverMultistepScheduler", ""), ("DPMSolverMultistepScheduler", ",\"algorithm_type\":\"dpmsolver\",\"final_sigmas_type\":\"sigma_min\""), ("UniPCMultistepScheduler", ""), ("DEISMultistepScheduler", "") })
        {
            var cfg = SchedulerConfig.ParseJson("""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"thresholding":true,"sample_max_value":1.5""" + extra + "}", cls);
            using var sch = SchedulerFactory.Create(cfg, 10);
            using var model = new AnalyticGaussian(device, Enumerable.Repeat(2f, 16).ToArray(), Enumerable.Repeat(0.1f, 16).ToArray(), [16], cfg);
            using var x = device.Allocate(2, 16);
            Sampler.InitialNoise(sch, x, 5);
            Sampler.Run(sch, model, x);
            var r = x.ToArray();
            // Data at 2 +- 0.1 is outside the threshold: x0 predictions are pulled to <= 1 in magnitude (a
            // sigma_min end adds ~sigma_min noise); without thresholding the samples would be near 2.
            Assert.That(r.All(v => float.IsFinite(v) && Math.Abs(v) <= 1.15f), Is.True, $"{cls}{extra}: max |x| {r.Max(Math.Abs)}");
        }
    }
}
