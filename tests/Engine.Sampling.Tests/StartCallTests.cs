using Engine.Core;
using Engine.Sampling.Schedulers;

namespace Engine.Sampling.Tests;

/// <summary>
/// Runs that start part-way down the schedule (img2img): diffusers' get_timesteps cut, the call each step
/// begins at, add_noise coordinates, multistep solvers starting with an empty history, and the loop.
/// </summary>
[TestFixture]
public class StartCallTests
{
    private static readonly SchedulerConfig Sd = SchedulerConfig.ParseJson(
        """{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"num_train_timesteps":1000,"steps_offset":1,"timestep_spacing":"leading"}""",
        "DDIMScheduler");

    private static Device Cpu => TestDevices.Get("cpu");

    [TestCase(8, 0.6, 4)]
    [TestCase(10, 0.3, 7)] // 10 * 0.3 = 3.0000000000000004: three steps run
    [TestCase(10, 0.7, 3)] // 10 * 0.7 = 7.000000000000001
    [TestCase(25, 1.0, 0)]
    [TestCase(3, 0.34, 2)]
    public void StrengthCutsAsDiffusersGetTimesteps(int steps, double strength, int start) =>
        Assert.That(Sampler.StrengthStartStep(steps, strength), Is.EqualTo(start));

    [TestCase(10, 0.05)]
    [TestCase(10, 0.0)]
    [TestCase(10, 1.5)]
    [TestCase(10, double.NaN)]
    public void StrengthThatRunsNothingIsRefused(int steps, double strength) =>
        Assert.That(() => Sampler.StrengthStartStep(steps, strength), Throws.InstanceOf<ArgumentException>().With.Message.Contains("strength"));

    public static IEnumerable<TestCaseData> EveryShortName() =>
        SamplerNames.Samplers.Select(s => new TestCaseData(s.Name).SetName($"StartsAtStepBoundaries({s.Name})"));

    [TestCaseSource(nameof(EveryShortName))]
    public void EveryScheduleStartsAtTheFirstCallOfAStep(string name)
    {
        const int steps = 10;
        using var scheduler = SamplerNames.Create(Sd, name, null, steps);
        int previous = -1;
        for (int k = 0; k < steps; k++)
        {
            int call = scheduler.FirstCallOfStep(k);
            Assert.That(call, Is.GreaterThan(previous).And.LessThan(scheduler.CallCount), $"step {k}");
            previous = call;
        }
        Assert.That(scheduler.FirstCallOfStep(0), Is.EqualTo(0));
        Assert.That(() => scheduler.FirstCallOfStep(steps), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }

    [Test]
    public void TwoCallSchedulersStartAtEvenCalls()
    {
        var karras = Sd.WithClass(HeunScheduler.DiffusersClass);
        using var heun = new HeunScheduler(karras, 6);
        using var dpm2 = new KDpm2Scheduler(karras.WithClass(KDpm2Scheduler.DiffusersClass), 6);
        Assert.That(Enumerable.Range(0, 6).Select(heun.FirstCallOfStep), Is.EqualTo(new[] { 0, 2, 4, 6, 8, 10 }));
        Assert.That(Enumerable.Range(0, 6).Select(dpm2.FirstCallOfStep), Is.EqualTo(new[] { 0, 2, 4, 6, 8, 10 }));
        // diffusers' Heun/KDPM2 add_noise uses sigmas[2 t_start]: the step's own sigma, not a midpoint.
        Assert.That(heun.CoordinatesAt(heun.FirstCallOfStep(3)), Is.EqualTo((1.0, heun.Sigmas![6])));
    }

    [Test]
    public void AddNoiseUsesTheStartCallsCoordinates()
    {
        using var ddim = new DdimScheduler(Sd, 8);
        using var euler = new EulerScheduler(Sd.WithClass(EulerScheduler.DiffusersClass), 8);
        ddim.StartAt(4);
        euler.StartAt(4);
        double abar = ddim.Training.AlphasCumprod[(int)ddim.Timesteps[4]];
        Assert.That(ddim.CoordinatesAt(ddim.StartCall), Is.EqualTo((Math.Sqrt(abar), Math.Sqrt(1 - abar))));
        Assert.That(euler.CoordinatesAt(euler.StartCall), Is.EqualTo((1.0, euler.Sigmas![4])), "x0 + sigma noise");
        using var clean = Cpu.Upload([1f, -2f, 0.5f], 3);
        using var noise = Cpu.Upload([0.25f, 1f, -1f], 3);
        using var output = Cpu.Allocate(3);
        Sampler.AddNoise(euler, clean, noise, output);
        float s = (float)euler.Sigmas[4];
        Assert.That(output.ToArray(), Is.EqualTo(new[] { 1f + 0.25f * s, -2f + s, 0.5f - s }).Within(1e-5));
    }

    /// <summary>A fresh diffusers scheduler begun part-way has no history: its first update is first order.</summary>
    /// <remarks>A null name is the class at solver_order 2 (the short name dpmpp_2m follows ComfyUI, not this class).</remarks>
    [TestCase(null, "DPMSolverMultistepScheduler")]
    [TestCase("dpmpp_3m", "DPMSolverMultistepScheduler")]
    [TestCase("unipc", "UniPCMultistepScheduler")]
    [TestCase("deis", "DEISMultistepScheduler")]
    public void MultistepSolversStartFirstOrder(string? name, string className)
    {
        Scheduler Multi() => name is null
            ? SchedulerFactory.Create(Sd.WithClass(className, ("solver_order", 2)), 10)
            : SamplerNames.Create(Sd, name, null, 10);
        using var multi = Multi();
        using var first = SchedulerFactory.Create(multi.Config.WithClass(className, ("solver_order", 1)), 10);
        Assert.That(first.Timesteps, Is.EqualTo(multi.Timesteps));
        float[] x0 = [0.3f, -1.2f, 0.8f, 0.1f], eps = [1f, -0.5f, 0.25f, -2f];
        var outputs = Enumerable.Range(0, 3).Select(k => eps.Select(e => e * (1 + 0.1f * k)).ToArray()).ToArray();
        float[] RunFrom(Scheduler s, int start, int calls)
        {
            s.StartAt(start);
            var (a, sg) = s.CoordinatesAt(start);
            using var x = Cpu.Upload(x0.Zip(eps, (c, e) => (float)(a * c + sg * e)).ToArray(), 4);
            for (int i = 0; i < calls; i++)
            {
                using var m = Cpu.Upload(outputs[i], 4);
                s.Step(m, start + i, x);
            }
            return x.ToArray();
        }
        Assert.That(RunFrom(multi, 5, 1), Is.EqualTo(RunFrom(first, 5, 1)).Within(1e-6), "first step after the start");
        // After the start it builds its history again: the second step is higher order.
        using var multi2 = Multi();
        using var first2 = SchedulerFactory.Create(multi.Config.WithClass(className, ("solver_order", 1)), 10);
        Assert.That(RunFrom(multi2, 5, 2), Is.Not.EqualTo(RunFrom(first2, 5, 2)));
    }

    [Test]
    public void LmsCombinesOnlyTheDerivativesItHolds()
    {
        using var lms = new LmsScheduler(Sd.WithClass(LmsScheduler.DiffusersClass), 10);
        lms.StartAt(6);
        float[] x = [0.5f, -1f], m = [0.2f, 0.4f];
        using var sample = Cpu.Upload(x, 2);
        using var output = Cpu.Upload(m, 2);
        lms.Step(output, 6, sample);
        // diffusers: order min(step_index + 1, 4) = 4, but one derivative held: x + c_0 (x - D) / sigma.
        double sigma = lms.Sigmas![6], c0 = lms.Coefficient(4, 6, 0);
        var expected = x.Zip(m, (xi, mi) => (float)(xi + c0 * mi)).ToArray(); // epsilon: (x - D) / sigma = eps
        Assert.That(sample.ToArray(), Is.EqualTo(expected).Within(1e-6));
        Assert.That(sigma, Is.GreaterThan(0));
    }

    [Test]
    public void TheLoopRunsOnlyTheCallsFromTheStart()
    {
        using var scheduler = new DdimScheduler(Sd, 8);
        int start = Sampler.StartAtStrength(scheduler, 0.6);
        Assert.That((start, scheduler.RemainingCalls), Is.EqualTo((4, 4)));
        var seen = new List<int>();
        using var zeros = Cpu.Zeros(2);
        var denoiser = new DelegateDenoiser((_, call) => { seen.Add(call.Index); return zeros; });
        using var sample = Cpu.Upload([1f, 2f], 2);
        var steps = new List<int>();
        Sampler.Run(scheduler, denoiser, sample, steps.Add);
        Assert.That(seen, Is.EqualTo(new[] { 4, 5, 6, 7 }));
        Assert.That(steps, Is.EqualTo(seen));
        Assert.That(() => scheduler.Step(zeros, 3, sample), Throws.InstanceOf<ArgumentOutOfRangeException>());
        Assert.That(() => scheduler.StartAt(8), Throws.InstanceOf<ArgumentOutOfRangeException>());
    }
}
