using Engine.Core;
using Engine.Sampling.Guidance;
using Engine.Sampling.Plugins;
using Engine.Tools;
using static Engine.Sampling.Tests.GuidanceTests;

namespace Engine.Sampling.Tests;

/// <summary>Plug-ins: identities against the plain solver, and the behaviour each method claims.</summary>
[TestFixture]
public class PluginTests
{
    // Named here because the namespace Engine.Cpu would otherwise hide the imported GuidanceTests.Cpu.
    private static Device Cpu => GuidanceTests.Cpu;

    private static IEnumerable<TestCaseData> Solvers()
    {
        foreach (var (cls, pred) in new[] { ("DDIMScheduler", "epsilon"), ("EulerDiscreteScheduler", "epsilon"), ("DPMSolverMultistepScheduler", "v_prediction"), ("UniPCMultistepScheduler", "epsilon"), ("HeunDiscreteScheduler", "sample") })
            yield return new TestCaseData(cls, pred);
    }

    /// <summary>Samples with the class-conditional model (CFG 2) through the plug-in <paramref name="wrap"/> creates.</summary>
    private static float[] Run(string cls, string pred, Func<IDenoiser, Scheduler, IDenoiser> wrap, Func<Scheduler, ITimestepProvider?>? timesteps = null, int steps = 12)
    {
        var cfg = Cfg(cls, pred);
        using var sch = SchedulerFactory.Create(cfg, steps);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(3), 3);
        var provider = timesteps?.Invoke(sch);
        using var guided = new GuidedDenoiser(model, cond, new GuidanceOptions { Scale = 2, Timesteps = provider }, sch);
        var top = wrap(guided, sch);
        try { return Sample(sch, top, 3); }
        finally { (top as IDisposable)?.Dispose(); (provider as IDisposable)?.Dispose(); }
    }

    private static float[] Plain(string cls, string pred) => Run(cls, pred, (g, _) => g);

    [TestCaseSource(nameof(Solvers))]
    public void NeutralSettingsEqualThePlainSolver(string cls, string pred)
    {
        var plain = Plain(cls, pred);
        Assert.That(Run(cls, pred, (g, s) => new EpsilonScaling(g, s, 1)), Is.EqualTo(plain), "epsilon scaling s = 1");
        Assert.That(Run(cls, pred, (g, s) => new HistoryGuidance(g, s, 0)), Is.EqualTo(plain), "HiGS weight 0");
        Assert.That(Run(cls, pred, (g, s) => g, s => new TimeShift(Cpu, s, 0)), Is.EqualTo(plain), "time-shift window 0");
        Assert.That(Run(cls, pred, (g, s) => new FSampler(g, s, new FSamplerOptions { Mode = FSamplerMode.Fixed })), Is.EqualTo(plain), "FSampler without skips");
        Assert.That(Run(cls, pred, (g, s) => new FSampler(g, s, new FSamplerOptions())), Is.EqualTo(plain), "FSampler off");
        Assert.That(Run(cls, pred, (g, s) => new DcCompensation(g, s, Enumerable.Repeat(1.0, s.CallCount).ToArray())), Is.EqualTo(plain), "DC ratios 1");
        Assert.That(Run(cls, pred, (g, s) => new EpsilonScaling(g, s, 1.05)), Is.Not.EqualTo(plain), "epsilon scaling s = 1.05 acts");
        Assert.That(Run(cls, pred, (g, s) => new HistoryGuidance(g, s, 1.5)), Is.Not.EqualTo(plain), "HiGS acts");
    }

    [TestCase("epsilon")]
    [TestCase("v_prediction")]
    [TestCase("sample")]
    public void EpsilonScalingDividesThePredictedNoise(string pred)
    {
        // In Karras form: D' = x~ - sigma eps / s, i.e. the noise implied by the output is eps / s.
        var cfg = Cfg("EulerDiscreteScheduler", pred);
        using var sch = SchedulerFactory.Create(cfg, 10);
        using var model = new AnalyticGaussian(Cpu, Means[0], Enumerable.Repeat(0.5f, Features).ToArray(), SampleShape, cfg);
        const double k = 1.2;
        using var scaled = new EpsilonScaling(model, sch, k);
        using var x = Cpu.Allocate([2, .. SampleShape]);
        Cpu.RandomNormal(x, 9, 0, 0);
        for (int i = 1; i < sch.CallCount; i += 3)
        {
            var call = sch.Call(i);
            var (nx, nm) = PredictionSpace.NoiseFromOutput(pred, call.InputAlpha, call.InputSigma);
            var xs = x.ToArray();
            var eps = model.Predict(x, call).ToArray().Select((m, j) => nx * xs[j] + nm * m).ToArray();
            var epsScaled = scaled.Predict(x, call).ToArray().Select((m, j) => nx * xs[j] + nm * m).ToArray();
            var expected = eps.Select(e => (float)(e / k)).ToArray();
            Assert.That(Fixtures.RelativeError(epsScaled.Select(v => (float)v).ToArray(), expected), Is.LessThanOrEqualTo(2e-5), $"call {i}");
            // Karras-form denoised estimate x~ - sigma eps / s, with x~ = x / a.
            var (dx, dm) = PredictionSpace.DataFromOutput(pred, call.InputAlpha, call.InputSigma);
            var d = scaled.Predict(x, call).ToArray().Select((m, j) => (float)(dx * xs[j] + dm * m)).ToArray();
            var dKarras = xs.Select((v, j) => (float)(v / call.InputAlpha - call.Sigma * eps[j] / k)).ToArray();
            Assert.That(Fixtures.RelativeError(d, dKarras), Is.LessThanOrEqualTo(2e-5), $"D' at call {i}");
        }
    }

    [Test]
    public void EpsilonScalingAboveOneLeavesLargerNormSamples()
    {
        // Ning et al.: the network over-predicts the noise at sampling time (exposure bias); dividing
        // eps by s > 1 removes less noise per step, so the sample keeps a larger norm. On the zero-mean
        // analytic model the final norm grows monotonically with s.
        var cfg = Cfg("DDIMScheduler");
        double Norm(double s)
        {
            using var sch = SchedulerFactory.Create(cfg, 20);
            using var model = new AnalyticGaussian(Cpu, new float[Features], Enumerable.Repeat(0.5f, Features).ToArray(), SampleShape, cfg);
            using var scaled = new EpsilonScaling(model, sch, s);
            var x = Sample(sch, scaled, 8);
            return Math.Sqrt(x.Sum(v => (double)v * v));
        }
        double n1 = Norm(1), n2 = Norm(1.005), n3 = Norm(1.017);
        TestContext.Out.WriteLine($"final norm: s=1 {n1:F4}, s=1.005 {n2:F4}, s=1.017 {n3:F4}");
        Assert.That(n2, Is.GreaterThan(n1));
        Assert.That(n3, Is.GreaterThan(n2));
    }

    [Test]
    public void EpsilonScalingRejectsNonPositiveScales()
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 10);
        var d = new DelegateDenoiser((x, _) => x);
        Assert.That(() => new EpsilonScaling(d, sch, 1, -0.01), Throws.TypeOf<ArgumentOutOfRangeException>().With.Message.Contains("must be > 0"));
    }

    [Test]
    public void HigsPushesAwayFromTheEmaOfPastPredictions()
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 10);
        using var model = new AnalyticGaussian(Cpu, Means[1], Enumerable.Repeat(0.5f, Features).ToArray(), SampleShape, cfg);
        const double w = 1.75, alpha = 0.75;
        using var higs = new HistoryGuidance(model, sch, w, alpha, 0, 1);
        using var x = Cpu.Allocate([2, .. SampleShape]);
        Cpu.RandomNormal(x, 4, 0, 0);
        double[]? ema = null;
        for (int i = 0; i < 4; i++)
        {
            var call = sch.Call(i);
            var (dx, dm) = PredictionSpace.DataFromOutput("epsilon", call.InputAlpha, call.InputSigma);
            var xs = x.ToArray();
            var x0 = model.Predict(x, call).ToArray().Select((m, j) => dx * xs[j] + dm * m).ToArray();
            var got = higs.Predict(x, call).ToArray().Select((m, j) => (float)(dx * xs[j] + dm * m)).ToArray();
            var expected = ema is null ? x0.Select(v => (float)v).ToArray() : x0.Select((v, j) => (float)(v + w * (v - ema[j]))).ToArray();
            Assert.That(Fixtures.RelativeError(got, expected), Is.LessThanOrEqualTo(2e-5), $"call {i}");
            ema = ema is null ? x0 : ema.Select((e, j) => alpha * e + (1 - alpha) * x0[j]).ToArray();
        }
    }

    [Test]
    public void TimeShiftPicksTheClosestNoiseVariance()
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 10);
        const int w = 20;
        using var ts = new TimeShift(Cpu, sch, w, cutoff: 100);
        const int b = 4;
        // Rows with variance around the noise level of call 3, each a little different.
        var call = sch.Call(3);
        var abar = sch.Training.AlphasCumprod;
        double nominal = 1 - abar[(int)call.Timestep];
        var scales = new[] { 0.98, 1.0, 1.01, 1.03 };
        var data = new float[b * Features];
        for (int r = 0; r < b; r++)
            for (int j = 0; j < Features; j++)
                data[r * Features + j] = (float)(Math.Sqrt(nominal * scales[r]) * (j % 2 == 0 ? 1 : -1));
        using var x = Cpu.Upload(data, [b, .. SampleShape]);
        using var t = Cpu.Allocate(b);
        ts.Fill(x, call, t);
        var got = t.ToArray();
        for (int r = 0; r < b; r++)
        {
            double v = nominal * scales[r];
            int t0 = (int)call.Timestep;
            int best = Enumerable.Range(t0 - w, 2 * w + 1).MinBy(k => Math.Abs(1 - abar[k] - v));
            TestContext.Out.WriteLine($"time-shift row {r}: variance {v:F6}, nominal t {t0}, picked {got[r]}, closest {best}; 1-abar: {string.Join(" ", Enumerable.Range(t0 - 3, 7).Select(k => (1 - abar[k]).ToString("F6")))}");
            Assert.That(got[r], Is.EqualTo(best), $"row {r} (variance {v:F5})");
        }
        Assert.That(got.Distinct().Count(), Is.GreaterThan(1), "rows shift differently");
        // Below the cutoff the nominal timestep is kept.
        var late = sch.Call(sch.CallCount - 1);
        ts.Fill(x, late, t);
        Assert.That(t.ToArray(), Is.All.EqualTo((float)late.Timestep));
    }

    /// <summary>A denoiser whose epsilon at call i is sum_k c_k i^k B_k (polynomial in the call index).</summary>
    private sealed class PolynomialEps(int degree) : IDenoiser, IDisposable
    {
        private Tensor? _out;
        public int Calls;
        public static float Value(int degree, int i, int j)
        {
            double v = 0;
            for (int k = 0; k <= degree; k++) v += Math.Sin(0.3 * j + k) * Math.Pow(i / 20.0, k);
            return (float)v;
        }
        public Tensor Predict(Tensor modelInput, in DenoiserCall call)
        {
            Calls++;
            int n = (int)modelInput.Length, index = call.Index;
            var host = Enumerable.Range(0, n).Select(j => Value(degree, index, j)).ToArray();
            _out?.Dispose();
            _out = modelInput.Device.Upload(host, modelInput.ShapeArray());
            return _out;
        }
        public void Dispose() => _out?.Dispose();
    }

    // float32 rounding is amplified by the extrapolation weights (sum |w| up to about 40 across a
    // skip); the stabilizer adds the rounding of its norm ratio.
    [TestCase(2, 1, 0.0, 1e-5)]
    [TestCase(3, 2, 0.0, 1e-5)]
    [TestCase(4, 3, 0.0, 2e-5)]
    [TestCase(4, 3, 0.9, 2e-5)]
    public void FSamplerExtrapolationIsExactForPolynomialHistories(int order, int degree, double stabilizer, double tolerance)
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 20);
        using var poly = new PolynomialEps(degree);
        using var fs = new FSampler(poly, sch, new FSamplerOptions { Mode = FSamplerMode.Fixed, Order = order, SkipEvery = 2, StabilizerDecay = stabilizer });
        using var x = Cpu.Allocate([1, .. SampleShape]);
        Cpu.Fill(x, 0.1f);
        for (int i = 0; i < sch.CallCount; i++)
        {
            var got = fs.Predict(x, sch.Call(i)).ToArray();
            var expected = Enumerable.Range(0, Features).Select(j => PolynomialEps.Value(degree, i, j)).ToArray();
            Assert.That(Fixtures.RelativeError(got, expected), Is.LessThanOrEqualTo(tolerance), $"call {i} ({(fs.SkippedIndices.Contains(i) ? "extrapolated" : "model")})");
        }
        Assert.That(fs.SkippedCalls, Is.GreaterThan(3), "calls saved");
        Assert.That(fs.RealCalls + fs.SkippedCalls, Is.EqualTo(sch.CallCount));
        Assert.That(poly.Calls, Is.EqualTo(fs.RealCalls), "the model ran only on real calls");
        Assert.That(fs.SkippedIndices, Has.None.LessThan(2).And.None.GreaterThanOrEqualTo(sch.CallCount - 4), "protected calls");
        // A lower order is not exact for the higher degree.
        using var poly2 = new PolynomialEps(degree + 1);
        using var fs2 = new FSampler(poly2, sch, new FSamplerOptions { Mode = FSamplerMode.Fixed, Order = order, SkipEvery = 2, StabilizerDecay = 0 });
        double worst = 0;
        for (int i = 0; i < sch.CallCount; i++)
        {
            var got = fs2.Predict(x, sch.Call(i)).ToArray();
            worst = Math.Max(worst, Fixtures.RelativeError(got, Enumerable.Range(0, Features).Select(j => PolynomialEps.Value(degree + 1, i, j)).ToArray()));
        }
        TestContext.Out.WriteLine($"order {order}: degree {degree + 1} history gives error {worst:E2}");
        Assert.That(worst, Is.GreaterThan(2e-4), "degree + 1 is not reproduced");
    }

    [Test]
    public void FSamplerGuardsLimitSkips()
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 20);
        using var poly = new PolynomialEps(1);
        using var fs = new FSampler(poly, sch, new FSamplerOptions { Mode = FSamplerMode.Fixed, Order = 2, SkipCalls = Enumerable.Range(0, 20).ToArray() });
        using var x = Cpu.Allocate([1, .. SampleShape]);
        for (int i = 0; i < sch.CallCount; i++) fs.Predict(x, sch.Call(i));
        var skipped = fs.SkippedIndices;
        Assert.That(skipped, Has.None.LessThan(2).And.None.GreaterThanOrEqualTo(16));
        for (int i = 0; i < sch.CallCount; i++)
            Assert.That(skipped.Contains(i) && skipped.Contains(i + 1) && skipped.Contains(i + 2), Is.False, $"three skips in a row at {i}");
        Assert.That(fs.SkippedCalls, Is.EqualTo(10), "two of every three eligible calls (2..15)");

        // Non-finite extrapolations are rejected: the model runs instead.
        var huge = new DelegateDenoiser((t, c) => { Cpu.Fill(t, c.Index % 2 == 0 ? 3e38f : -3e38f); return t; });
        using var fsHuge = new FSampler(huge, sch, new FSamplerOptions { Mode = FSamplerMode.Fixed, SkipEvery = 2 });
        using var y = Cpu.Allocate([1, .. SampleShape]);
        for (int i = 0; i < sch.CallCount; i++) fsHuge.Predict(y, sch.Call(i));
        Assert.That(fsHuge.SkippedCalls, Is.EqualTo(0));
        Assert.That(fsHuge.RejectedSkips, Is.GreaterThan(0));
    }

    [Test]
    public void FSamplerAdaptiveSkipsOnlyWhereH2AndH3Agree()
    {
        var cfg = Cfg("DDIMScheduler");
        using var sch = SchedulerFactory.Create(cfg, 20);
        using var x = Cpu.Allocate([1, .. SampleShape]);
        using var smooth = new PolynomialEps(1);
        using var fs = new FSampler(smooth, sch, new FSamplerOptions { Mode = FSamplerMode.Adaptive, Order = 2 });
        for (int i = 0; i < sch.CallCount; i++) fs.Predict(x, sch.Call(i));
        Assert.That(fs.SkippedCalls, Is.GreaterThan(0), "linear history: h2 = h3");
        var rough = new DelegateDenoiser((t, c) => { Cpu.Fill(t, (float)Math.Pow(-2, c.Index % 5)); return t; });
        using var fs2 = new FSampler(rough, sch, new FSamplerOptions { Mode = FSamplerMode.Adaptive, Order = 2 });
        using var y = Cpu.Allocate([1, .. SampleShape]);
        for (int i = 0; i < sch.CallCount; i++) fs2.Predict(y, sch.Call(i));
        Assert.That(fs2.SkippedCalls, Is.EqualTo(0), "oscillating history: h2 and h3 disagree");
    }

    [Test]
    public void DcCompensationInterpolatesAtTheRatioTime()
    {
        // Data predictions linear in the timestep are reproduced exactly at t' by the Lagrange weights.
        var cfg = Cfg("DPMSolverMultistepScheduler");
        using var sch = SchedulerFactory.Create(cfg, 10);
        var ratios = Enumerable.Range(0, 10).Select(i => 1 + 0.05 * (i % 3)).ToArray();
        var model = new DelegateDenoiser((x, c) =>
        {
            // Output an epsilon whose x0 = (x - s eps) / a equals 0.01 t at every element.
            var xs = x.ToArray();
            var host = xs.Select(v => (float)((v - c.InputAlpha * 0.01 * c.Timestep) / c.InputSigma)).ToArray();
            return x.Device.Upload(host, x.ShapeArray());
        });
        using var dc = new DcCompensation(model, sch, ratios, order: 2);
        using var x = Cpu.Allocate([1, .. SampleShape]);
        Cpu.RandomNormal(x, 1, 0, 0);
        for (int i = 0; i < sch.CallCount; i++)
        {
            var call = sch.Call(i);
            var xs = x.ToArray();
            var x0 = dc.Predict(x, call).ToArray().Select((m, j) => (xs[j] - call.InputSigma * m) / call.InputAlpha).ToArray();
            double tTarget = i < 2 ? call.Timestep : sch.Timesteps[i - 1] + ratios[i] * (call.Timestep - sch.Timesteps[i - 1]);
            Assert.That(x0, Is.All.EqualTo(0.01 * tTarget).Within(2e-3), $"call {i}");
        }
    }

    [Test]
    public void DcCompensationReadsRatiosFromJson()
    {
        var cfg = Cfg("DPMSolverMultistepScheduler");
        using var sch = SchedulerFactory.Create(cfg, 4);
        var d = new DelegateDenoiser((x, _) => x);
        var path = Path.Combine(Path.GetTempPath(), $"dc-{Guid.NewGuid():N}.json");
        try
        {
            File.WriteAllText(path, """{"ratios":[1,1,0.98,1.02],"order":1}""");
            using var dc = DcCompensation.FromJson(d, sch, path);
            Assert.That(dc.Order, Is.EqualTo(1));
            Assert.That(dc.Ratios, Is.EqualTo(new[] { 1, 1, 0.98, 1.02 }));
            File.WriteAllText(path, """{"ratios":[1,1]}""");
            Assert.That(() => DcCompensation.FromJson(d, sch, path), Throws.ArgumentException.With.Message.Contains(path).And.Message.Contains("2 ratios for 4"));
            File.WriteAllText(path, """{"ratios":"x"}""");
            Assert.That(() => DcCompensation.FromJson(d, sch, path), Throws.ArgumentException.With.Message.Contains(path));
        }
        finally { File.Delete(path); }
    }
}
