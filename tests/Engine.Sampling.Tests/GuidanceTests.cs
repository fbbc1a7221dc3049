using Engine.Core;
using Engine.Sampling.Guidance;

namespace Engine.Sampling.Tests;

/// <summary>CFG, CFG rescale, guidance interval, PAG and CADS on the class-conditional analytic model.</summary>
[TestFixture]
public class GuidanceTests
{
    internal const int Features = 16;
    internal static readonly int[] SampleShape = [1, 4, 4];
    internal static readonly float[][] Means =
    [
        Enumerable.Range(0, Features).Select(i => (float)Math.Sin(0.7 * i)).ToArray(),
        Enumerable.Range(0, Features).Select(i => (float)Math.Cos(0.3 * i) - 0.5f).ToArray(),
        Enumerable.Range(0, Features).Select(i => 0.05f * i - 0.4f).ToArray(),
        new float[Features], // null class: the unconditional mean
    ];

    internal static SchedulerConfig Cfg(string cls, string prediction = "epsilon") => SchedulerConfig.ParseJson(
        $$"""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"prediction_type":"{{prediction}}"}""", cls);

    internal static Device Cpu => TestDevices.Get("cpu");

    /// <summary>Runs a full sampling loop of <paramref name="steps"/> steps and returns the final samples.</summary>
    internal static float[] Sample(Scheduler sch, IDenoiser denoiser, int batch, ulong seed = 7)
    {
        using var x = Cpu.Allocate([batch, .. SampleShape]);
        sch.Noise = new PhiloxNoise(seed);
        Sampler.InitialNoise(sch, x, seed);
        Sampler.Run(sch, denoiser, x);
        return x.ToArray();
    }

    internal static int[] Labels(int batch) => Enumerable.Range(0, batch).Select(i => i % 3).ToArray();

    private static IEnumerable<string> Solvers() => ["DDIMScheduler", "EulerDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler", "HeunDiscreteScheduler"];

    [TestCaseSource(nameof(Solvers))]
    public void CfgScaleOneEqualsTheConditionalModel(string cls)
    {
        var cfg = Cfg(cls);
        using var sch = SchedulerFactory.Create(cfg, 12);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(4), 3);
        using var guided = new GuidedDenoiser(model, cond, new GuidanceOptions { Scale = 1 }, sch);
        var got = Sample(sch, guided, 4);
        Assert.That(model.RowsPerForward, Is.All.EqualTo(4), "only the conditional branch is evaluated");

        // Reference: the model called directly on the conditional labels.
        using var labels = Cpu.Upload(Labels(4).Select(l => (float)l).ToArray(), 4);
        using var ts = Cpu.Allocate(4);
        var direct = new DelegateDenoiser((x, c) => { Cpu.Fill(ts, (float)c.Timestep); return model.Forward(x, ts, new ConditioningBatch { ClassLabels = labels }); });
        using var sch2 = SchedulerFactory.Create(cfg, 12);
        var expected = Sample(sch2, direct, 4);
        Assert.That(got, Is.EqualTo(expected), "CFG 1 is the conditional model exactly");
    }

    /// <summary>One guided evaluation against the branches evaluated separately.</summary>
    private static (float[] Guided, float[] C, float[] U, float[] P) OneCall(GuidanceOptions options, string prediction = "epsilon", bool embeddings = false)
    {
        var cfg = Cfg("DDIMScheduler", prediction);
        using var sch = SchedulerFactory.Create(cfg, 10);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
        const int b = 3;
        using var emb = Cpu.Upload(Labels(b).SelectMany(l => Means[l]).ToArray(), b, Features);
        using var nullEmb = Cpu.Upload(Means[3], 1, Features);
        using var cond = embeddings ? Conditioning.FromEmbeddings(emb, nullEmb) : Conditioning.ClassLabels(Cpu, Labels(b), 3);
        using var guided = new GuidedDenoiser(model, cond, options, sch);
        using var x = Cpu.Allocate([b, .. SampleShape]);
        Cpu.RandomNormal(x, 3, 0, 0);
        var call = sch.Call(4);
        var g = guided.Predict(x, call).ToArray();
        int branches = 1 + (options.Scale != 1 ? 1 : 0) + (options.PagScale != 0 ? 1 : 0);
        Assert.That(model.RowsPerForward[^1], Is.EqualTo(branches * b), "one batched forward over all branches");
        if (options.PagScale != 0)
        {
            Assert.That(model.LastBatch!.PerturbedStart, Is.EqualTo((branches - 1) * b), "perturbed rows start");
            Assert.That(model.LastBatch.PerturbedCount, Is.EqualTo(b), "perturbed rows");
            Assert.That(model.LastBatch.PerturbedLayers, Is.EqualTo(new[] { "mid_block" }), "default PAG layer");
        }
        using var ts = Cpu.Allocate(b);
        Cpu.Fill(ts, (float)call.Timestep);
        using var labelsC = Cpu.Upload(Labels(b).Select(l => (float)l).ToArray(), b);
        using var labelsU = Cpu.Upload([3f, 3f, 3f], b);
        float[] Eval(Tensor labels, bool ptb) => model.Forward(x, ts, new ConditioningBatch { ClassLabels = labels, PerturbedStart = 0, PerturbedCount = ptb ? b : 0 }).ToArray();
        return (g, Eval(labelsC, false), Eval(labelsU, false), Eval(labelsC, true));
    }

    [TestCase("epsilon", false)]
    [TestCase("v_prediction", false)]
    [TestCase("epsilon", true)]
    public void CfgIsUncondPlusScaledDifference(string prediction, bool embeddings)
    {
        const double w = 4.5;
        var (g, c, u, _) = OneCall(new GuidanceOptions { Scale = w }, prediction, embeddings);
        var expected = u.Select((v, i) => (float)(v + w * (c[i] - v))).ToArray();
        Assert.That(Fixtures.RelativeError(g, expected), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void PagAddsThePerturbedDifference()
    {
        const double w = 3, s = 2;
        var (g, c, u, p) = OneCall(new GuidanceOptions { Scale = w, PagScale = s });
        var expected = u.Select((v, i) => (float)(v + w * (c[i] - v) + s * (c[i] - p[i]))).ToArray();
        Assert.That(Fixtures.RelativeError(g, expected), Is.LessThanOrEqualTo(1e-5));
        // PAG alone (CFG 1): cond + s (cond - perturbed), two branches.
        var (g2, c2, _, p2) = OneCall(new GuidanceOptions { PagScale = s });
        var expected2 = c2.Select((v, i) => (float)(v + s * (v - p2[i]))).ToArray();
        Assert.That(Fixtures.RelativeError(g2, expected2), Is.LessThanOrEqualTo(1e-5));
    }

    [TestCaseSource(nameof(Solvers))]
    public void PagScaleZeroEqualsCfg(string cls)
    {
        var cfg = Cfg(cls);
        float[] Run(GuidanceOptions options)
        {
            using var sch = SchedulerFactory.Create(cfg, 10);
            using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
            using var cond = Conditioning.ClassLabels(Cpu, Labels(3), 3);
            using var guided = new GuidedDenoiser(model, cond, options, sch);
            return Sample(sch, guided, 3);
        }
        var cfgOnly = Run(new GuidanceOptions { Scale = 3 });
        Assert.That(Run(new GuidanceOptions { Scale = 3, PagScale = 0, PagLayers = ["up_blocks.1"] }), Is.EqualTo(cfgOnly));
        Assert.That(Run(new GuidanceOptions { Scale = 3, PagScale = 1.5 }), Is.Not.EqualTo(cfgOnly), "PAG with a positive scale changes the samples");
    }

    [Test]
    public void CfgRescaleMatchesThePerSampleStdFormula()
    {
        const double w = 6, phi = 0.7;
        var (g, c, u, _) = OneCall(new GuidanceOptions { Scale = w, RescalePhi = phi });
        var expected = new float[g.Length];
        for (int r = 0; r < 3; r++)
        {
            var cfgRow = Enumerable.Range(r * Features, Features).Select(i => u[i] + w * (c[i] - u[i])).ToArray();
            double Std(IEnumerable<double> v) { var a = v.ToArray(); double m = a.Average(); return Math.Sqrt(a.Sum(t => (t - m) * (t - m)) / (a.Length - 1)); }
            double ratio = Std(Enumerable.Range(r * Features, Features).Select(i => (double)c[i])) / Std(cfgRow);
            for (int j = 0; j < Features; j++) expected[r * Features + j] = (float)(phi * cfgRow[j] * ratio + (1 - phi) * cfgRow[j]);
        }
        Assert.That(Fixtures.RelativeError(g, expected), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void GuidanceIntervalSkipsTheUnconditionalBranchOutside()
    {
        var cfg = Cfg("EulerDiscreteScheduler");
        using var sch = SchedulerFactory.Create(cfg, 10);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(2), 3);
        var opts = new GuidanceOptions { Scale = 4, IntervalSigmaMin = 0.5, IntervalSigmaMax = 5 };
        using var guided = new GuidedDenoiser(model, cond, opts, sch);
        Sample(sch, guided, 2);
        for (int i = 0; i < sch.CallCount; i++)
        {
            double sigma = sch.Call(i).Sigma;
            int expected = sigma > 0.5 && sigma <= 5 ? 4 : 2;
            Assert.That(model.RowsPerForward[i], Is.EqualTo(expected), $"rows at call {i} (sigma {sigma})");
        }
        Assert.That(model.RowsPerForward, Has.Some.EqualTo(2).And.Some.EqualTo(4), "the grid crosses the interval");
    }

    [TestCase(false)]
    [TestCase(true)]
    public void CadsWithNoiseScaleZeroEqualsPlainSampling(bool embeddings)
    {
        var cfg = Cfg("DPMSolverMultistepScheduler");
        float[] Run(CadsOptions? cads)
        {
            using var sch = SchedulerFactory.Create(cfg, 10);
            using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
            using var emb = Cpu.Upload(Labels(3).SelectMany(l => Means[l]).ToArray(), 3, Features);
            using var nullEmb = Cpu.Upload(Means[3], 1, Features);
            using var cond = embeddings ? Conditioning.FromEmbeddings(emb, nullEmb) : Conditioning.ClassLabels(Cpu, Labels(3), 3);
            using var guided = new GuidedDenoiser(model, cond, new GuidanceOptions { Scale = 2, Cads = cads }, sch);
            return Sample(sch, guided, 3);
        }
        var plain = Run(null);
        Assert.That(Run(new CadsOptions { NoiseScale = 0 }), Is.EqualTo(plain));
        Assert.That(Run(new CadsOptions { NoiseScale = 0, Psi = 0 }), Is.EqualTo(plain));
        Assert.That(Run(new CadsOptions { NoiseScale = 0.25 }), Is.Not.EqualTo(plain), "CADS with noise changes the samples");
    }

    [Test]
    public void CadsCorruptionFollowsTheFormula()
    {
        const int b = 4, e = 4096;
        using var clean = Cpu.Allocate(b, e);
        Cpu.RandomNormal(clean, 11, 0, 0);
        Cpu.Affine(clean, clean, 0.3f, 0.2f);
        using var outRaw = Cpu.Allocate(b, e);
        using var outRescaled = Cpu.Allocate(b, e);
        using var raw = new CadsNoise(new CadsOptions { NoiseScale = 0.5, Psi = 0 }, b);
        using var rescaled = new CadsNoise(new CadsOptions { NoiseScale = 0.5, Psi = 1 }, b);
        // 10 calls, call 2: t = 0.8, gamma = (0.9 - 0.8) / 0.3.
        raw.Configure(2, 10, [0]);
        rescaled.Configure(2, 10, [0]);
        double gamma = (0.9 - 0.8) / 0.3;
        Assert.That(raw.Gamma, Is.EqualTo(gamma).Within(1e-12));
        raw.Corrupt(clean, outRaw);
        rescaled.Corrupt(clean, outRescaled);
        var y = clean.ToArray(); var r = outRaw.ToArray(); var q = outRescaled.ToArray();
        for (int row = 0; row < b; row++)
        {
            var n = Enumerable.Range(row * e, e).Select(i => (r[i] - Math.Sqrt(gamma) * y[i]) / (0.5 * Math.Sqrt(1 - gamma))).ToArray();
            Assert.That(n.Average(), Is.EqualTo(0).Within(0.06), $"noise mean, row {row}");
            Assert.That(Math.Sqrt(n.Select(v => v * v).Average()), Is.EqualTo(1).Within(0.05), $"noise std, row {row}");
            var (ym, ys) = Stats(y.AsSpan(row * e, e)); var (qm, qs) = Stats(q.AsSpan(row * e, e));
            Assert.That(qm, Is.EqualTo(ym).Within(1e-4), $"rescaled mean, row {row}");
            Assert.That(qs, Is.EqualTo(ys).Within(1e-4 * ys), $"rescaled std, row {row}");
        }
        // Past tau2 the condition is pure noise; below tau1 it is untouched.
        raw.Configure(0, 10, [0]);
        Assert.That(raw.Gamma, Is.EqualTo(0));
        raw.Configure(5, 10, [0]);
        Assert.That(raw.IsIdentity, Is.True);
    }

    internal static (double Mean, double Std) Stats(ReadOnlySpan<float> v)
    {
        double m = 0; foreach (var t in v) m += t; m /= v.Length;
        double s = 0; foreach (var t in v) s += (t - m) * (t - m);
        return (m, Math.Sqrt(s / v.Length));
    }

    [Test]
    public void CadsIncreasesSampleVarianceAtEqualSeeds()
    {
        var cfg = Cfg("DDIMScheduler");
        const int b = 64;
        double Spread(CadsOptions? cads)
        {
            using var sch = SchedulerFactory.Create(cfg, 20);
            using var model = new FakeConditionalModel(Cpu, Means, 0.2, cfg);
            using var cond = Conditioning.ClassLabels(Cpu, new int[b], 3);
            using var guided = new GuidedDenoiser(model, cond, new GuidanceOptions { Scale = 3, Cads = cads }, sch);
            var x = Sample(sch, guided, b);
            // Per-element variance across the batch (all samples share class 0), averaged.
            double total = 0;
            for (int j = 0; j < Features; j++)
            {
                var col = Enumerable.Range(0, b).Select(r => (double)x[r * Features + j]).ToArray();
                double m = col.Average();
                total += col.Sum(v => (v - m) * (v - m)) / (b - 1);
            }
            return total / Features;
        }
        double plain = Spread(null), cads = Spread(new CadsOptions { NoiseScale = 0.25, Seed = 5 });
        TestContext.Out.WriteLine($"sample variance: plain {plain:F5}, CADS {cads:F5}");
        Assert.That(cads, Is.GreaterThan(plain * 1.05));
    }

    [Test]
    public void ImpossibleOptionsAreRejectedByName()
    {
        Assert.That(() => new GuidanceOptions { RescalePhi = 1.5 }.Validate(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("phi"));
        Assert.That(() => new GuidanceOptions { PagScale = -1 }.Validate(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("PAG"));
        Assert.That(() => new GuidanceOptions { IntervalSigmaMin = 3, IntervalSigmaMax = 2 }.Validate(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("interval"));
        Assert.That(() => new CadsOptions { Tau1 = 0.9, Tau2 = 0.5 }.Validate(), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("tau2"));
        var cfg = Cfg("DDIMScheduler", "v_prediction");
        using var sch = SchedulerFactory.Create(cfg, 4);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, Cfg("DDIMScheduler"));
        using var cond = Conditioning.ClassLabels(Cpu, [0], 3);
        Assert.That(() => new GuidedDenoiser(model, cond, new GuidanceOptions(), sch), Throws.ArgumentException.With.Message.Contains("prediction_type"));
        using var guided = new GuidedDenoiser(model, cond, new GuidanceOptions(), 4);
        using var x = Cpu.Allocate([2, .. SampleShape]);
        Assert.That(() => guided.Predict(x, sch.Call(0)), Throws.ArgumentException.With.Message.Contains("batch"));
    }
}
