using Engine.Core;
using Engine.Sampling.Distillation;
using Engine.Sampling.Guidance;
using Engine.Sampling.Schedulers;
using static Engine.Sampling.Tests.GuidanceTests;

namespace Engine.Sampling.Tests;

/// <summary>Distillation++, predictor-corrector guidance and the option catalog.</summary>
[TestFixture]
public class DistillationTests
{
    // Named here because the namespace Engine.Cpu would otherwise hide the imported GuidanceTests.Cpu.
    private static Device Cpu => GuidanceTests.Cpu;

    private static readonly SchedulerConfig Vp = SchedulerConfig.ParseJson("""{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"timestep_spacing":"trailing","clip_sample":false}""", "DDIMScheduler");

    [Test]
    public void LambdaZeroEqualsTheStudentAndMatchesDdim()
    {
        using var ddim = new DdimScheduler(Vp, 4);
        Assert.That(ddim.Timesteps, Is.EqualTo(new double[] { 999, 749, 499, 249 }));
        using var student = new FakeConditionalModel(Cpu, Means, 0.5, Vp);
        using var teacher = new FakeConditionalModel(Cpu, Means, 0.3, Vp);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(3), 3);
        using var s = new GuidedDenoiser(student, cond, new GuidanceOptions(), 4);
        using var t = new GuidedDenoiser(teacher, cond, new GuidanceOptions { Scale = 5 }, 4);
        using var x = Cpu.Allocate([3, .. SampleShape]);
        Cpu.RandomNormal(x, 21, 0, 0);
        var start = x.ToArray();
        using var sampler = new DistillationSampler(ddim.Training, ddim.Timesteps, "epsilon", "epsilon", new DistillationOptions { Lambda = 0, GuideSteps = 2 });
        sampler.Run(s, t, x);
        Assert.That(sampler.TeacherCalls, Is.EqualTo(0), "lambda 0: no teacher evaluation");
        Assert.That(sampler.StudentCalls, Is.EqualTo(4));
        var got = x.ToArray();
        // The same student under the DDIM scheduler (set_alpha_to_one, trailing spacing).
        using var y = Cpu.Upload(start, [3, .. SampleShape]);
        Sampler.Run(ddim, s, y);
        Assert.That(Fixtures.RelativeError(got, y.ToArray()), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void OneStepX0StudentIsOneForwardWithClamp()
    {
        using var model = new FakeConditionalModel(Cpu, Means.Select(m => m.Select(v => 3 * v).ToArray()).ToArray(), 0.5, Vp with { PredictionType = "sample" });
        using var cond = Conditioning.ClassLabels(Cpu, Labels(2), 3);
        using var s = new GuidedDenoiser(model, cond, new GuidanceOptions(), 1);
        using var x = Cpu.Allocate([2, .. SampleShape]);
        Cpu.RandomNormal(x, 5, 0, 0);
        using var ts = Cpu.Allocate(2);
        Cpu.Fill(ts, 999);
        using var labels = Cpu.Upload([0f, 1f], 2);
        var direct = model.Forward(x, ts, new ConditioningBatch { ClassLabels = labels }).ToArray().Select(v => Math.Clamp(v, -1f, 1f)).ToArray();
        using var sampler = new DistillationSampler(new Schedules.TrainingSchedule(Vp), [999], "sample", "epsilon", new DistillationOptions { ClampX0 = 1 });
        sampler.Run(s, null, x);
        Assert.That(Fixtures.RelativeError(x.ToArray(), direct), Is.LessThanOrEqualTo(1e-6));
        Assert.That(direct, Has.Some.EqualTo(1f).Or.Some.EqualTo(-1f), "the clamp is exercised");
        Assert.That(model.LastTimesteps, Is.All.EqualTo(999f));
    }

    [TestCase(RenoiseMode.Deterministic)]
    [TestCase(RenoiseMode.Random)]
    [TestCase(RenoiseMode.Hybrid)]
    public void TeacherRefinementMovesTowardTheTeacher(RenoiseMode mode)
    {
        // The student's class means are off by 0.5; the teacher knows the true means.
        var wrong = Means.Select(m => m.Select(v => v + 0.5f).ToArray()).ToArray();
        using var student = new FakeConditionalModel(Cpu, wrong, 0.5, Vp);
        using var teacher = new FakeConditionalModel(Cpu, Means, 0.5, Vp);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(3), 3);
        double Bias(double lambda, out DistillationSampler used)
        {
            using var s = new GuidedDenoiser(student, cond, new GuidanceOptions(), 4);
            using var t = new GuidedDenoiser(teacher, cond, new GuidanceOptions { Scale = 1.5 }, 4);
            using var x = Cpu.Allocate([3, .. SampleShape]);
            Cpu.RandomNormal(x, 8, 0, 0);
            used = new DistillationSampler(new Schedules.TrainingSchedule(Vp), [999, 749, 499, 249], "epsilon", "epsilon", new DistillationOptions { Lambda = lambda, GuideSteps = 3, Renoise = mode });
            used.Run(s, t, x, new PhiloxNoise(3));
            if (lambda > 0) Assert.That(t.BranchEvaluations, Is.EqualTo(2 * 3), "teacher CFG: cond + uncond per guided step");
            var v = x.ToArray();
            return v.Select((e, j) => e - Means[Labels(3)[j / Features]][j % Features]).Average();
        }
        double b0 = Bias(0, out var s0), b1 = Bias(0.3, out var s1);
        s0.Dispose(); s1.Dispose();
        TestContext.Out.WriteLine($"{mode}: mean offset from the true means: student {b0:F4}, Distillation++ {b1:F4}");
        Assert.That(s1.TeacherCalls, Is.EqualTo(3));
        Assert.That(s1.StudentCalls, Is.EqualTo(4));
        Assert.That(Math.Abs(b1), Is.LessThan(Math.Abs(b0)));
    }

    [Test]
    public void ConsistencyBoundaryFollowsLcm()
    {
        using var sampler = new DistillationSampler(new Schedules.TrainingSchedule(Vp), [999, 499], "epsilon", "epsilon", new DistillationOptions { ConsistencyBoundary = true });
        var (skip, outC) = sampler.Boundary(499);
        double st = 4990;
        Assert.That(skip, Is.EqualTo(0.25 / (st * st + 0.25)).Within(1e-15));
        Assert.That(outC, Is.EqualTo(st / Math.Sqrt(st * st + 0.25)).Within(1e-15));
        Assert.That(sampler.Boundary(0), Is.EqualTo((1.0, 0.0)), "identity at t = 0");
    }

    [Test]
    public void PredictorCorrectorWithoutCorrectionIsConditionalDdimAndGammaSharpens()
    {
        using var model = new FakeConditionalModel(Cpu, Means, 0.3, Vp);
        using var cond = Conditioning.ClassLabels(Cpu, new int[16], 3);
        float[] Run(int steps, double gamma)
        {
            using var sch = new DdimScheduler(Vp, 10);
            using var g = new GuidedDenoiser(model, cond, new GuidanceOptions(), sch);
            using var x = Cpu.Allocate([16, .. SampleShape]);
            Cpu.RandomNormal(x, 2, 0, 0);
            PredictorCorrectorGuidance.Run(sch, g, x, new PredictorCorrectorOptions { Gamma = gamma, CorrectorSteps = steps, StepSize = 0.2 }, new PhiloxNoise(4));
            return x.ToArray();
        }
        using var sch2 = new DdimScheduler(Vp, 10);
        using var g2 = new GuidedDenoiser(model, cond, new GuidanceOptions(), sch2);
        using var y = Cpu.Allocate([16, .. SampleShape]);
        Cpu.RandomNormal(y, 2, 0, 0);
        Sampler.Run(sch2, g2, y);
        Assert.That(Run(0, 3), Is.EqualTo(y.ToArray()), "no corrector steps: the conditional DDIM run");
        // Projection on (mu_c - mu_null): guidance with gamma > 1 pushes further along the class direction.
        double Along(float[] v) => Enumerable.Range(0, v.Length).Sum(j => (double)v[j] * (Means[0][j % Features] - Means[3][j % Features]));
        double plain = Along(Run(0, 3)), corrected = Along(Run(2, 3));
        TestContext.Out.WriteLine($"class-direction projection: plain {plain:F3}, corrected {corrected:F3}");
        Assert.That(corrected, Is.GreaterThan(plain));
    }

    [Test]
    public void CatalogParsesOptionsAndNamesBadOnes()
    {
        Assert.That(SamplingOptionCatalog.Entries.Select(e => e.Name), Is.Unique);
        Assert.That(SamplingOptionCatalog.Entries, Has.All.Matches<SamplingOptionEntry>(e => e.Description.Length > 10 && e.Keys.Count > 0));
        var o = SamplingOptionCatalog.Parse(["pag_scale=3", "eps_scale=1.005", "cfg_scale=7.5", "cfg_interval=0.28,5.42", "cads_scale=0.1", "fsampler=h3", "fsampler_mode=adaptive", "distill_renoise=hybrid", "ts_window=10"]);
        Assert.That(o.Guidance.PagScale, Is.EqualTo(3));
        Assert.That(o.EpsilonScale, Is.EqualTo(1.005));
        Assert.That(o.Guidance.Scale, Is.EqualTo(7.5));
        Assert.That((o.Guidance.IntervalSigmaMin, o.Guidance.IntervalSigmaMax), Is.EqualTo((0.28, 5.42)));
        Assert.That(o.Guidance.Cads!.NoiseScale, Is.EqualTo(0.1));
        Assert.That(o.FSampler.Order, Is.EqualTo(3));
        Assert.That(o.FSampler.Mode, Is.EqualTo(Plugins.FSamplerMode.Adaptive));
        Assert.That(o.Distillation.Renoise, Is.EqualTo(RenoiseMode.Hybrid));
        Assert.That(o.TimeShiftWindow, Is.EqualTo(10));
        var defaults = SamplingOptionCatalog.Parse(new Dictionary<string, string>());
        Assert.That(defaults.Guidance.Scale, Is.EqualTo(1));
        Assert.That(defaults.Guidance.Cads, Is.Null);
        Assert.That(defaults.FSampler.Mode, Is.EqualTo(Plugins.FSamplerMode.Off));

        Assert.That(() => SamplingOptionCatalog.Parse(["pag_scael=3"]), Throws.ArgumentException.With.Message.Contains("pag_scael").And.Message.Contains("pag_scale"));
        Assert.That(() => SamplingOptionCatalog.Parse(["cfg_rescale=2"]), Throws.ArgumentException.With.Message.Contains("cfg_rescale").And.Message.Contains("[0, 1]"));
        Assert.That(() => SamplingOptionCatalog.Parse(["eps_scale=abc"]), Throws.ArgumentException.With.Message.Contains("eps_scale"));
        Assert.That(() => SamplingOptionCatalog.Parse(["fsampler=h5"]), Throws.ArgumentException.With.Message.Contains("h2, h3, h4"));
        Assert.That(() => SamplingOptionCatalog.Parse(["cfg_interval=5,1"]), Throws.ArgumentException.With.Message.Contains("cfg_interval"));
        Assert.That(() => SamplingOptionCatalog.Parse(["cads_tau1=0.95"]), Throws.ArgumentException.With.Message.Contains("tau2"));
        Assert.That(() => SamplingOptionCatalog.Parse(["ts_window=-1"]), Throws.ArgumentException.With.Message.Contains("ts_window"));
        Assert.That(() => SamplingOptionCatalog.Parse(["pag_scale"]), Throws.ArgumentException.With.Message.Contains("key=value"));
    }

    [Test]
    public void BuiltStackComposesEveryPlugin()
    {
        var cfg = Cfg("DPMSolverMultistepScheduler");
        using var sch = SchedulerFactory.Create(cfg, 20);
        using var model = new FakeConditionalModel(Cpu, Means, 0.5, cfg);
        using var cond = Conditioning.ClassLabels(Cpu, Labels(2), 3);
        var o = SamplingOptionCatalog.Parse(["cfg_scale=3", "pag_scale=1", "eps_scale=1.005", "higs_weight=1", "ts_window=5", "fsampler=h2", "fsampler_skip_every=3"]);
        using var stack = o.Build(model, cond, sch, Cpu);
        var x = Sample(sch, stack, 2);
        Assert.That(x, Has.All.Matches<float>(float.IsFinite));
        Assert.That(stack.FSampler!.SkippedCalls, Is.GreaterThan(0));
        Assert.That(stack.Guided.Forwards, Is.EqualTo(sch.CallCount - stack.FSampler.SkippedCalls), "skipped calls run no branch");
        Assert.That(stack.Guided.BranchEvaluations, Is.EqualTo(3 * stack.Guided.Forwards));
    }
}
