using Engine.Core;
using Engine.Sampling.Schedulers;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>Sampler contracts on the device: batch invariance, no host traffic or allocation per step.</summary>
[TestFixture]
public class DeviceContractTests
{
    private static readonly float[] Mu = Enumerable.Range(0, 48).Select(i => (float)Math.Sin(i * 0.7)).ToArray();
    private static readonly float[] S = Enumerable.Range(0, 48).Select(i => 0.3f + 0.02f * i).ToArray();
    private static readonly int[] One = [3, 4, 4];

    private static SchedulerConfig Cfg(string cls, string extra = "") => SchedulerConfig.ParseJson(
        """{"beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012""" + extra + "}", cls);

    private static IEnumerable<TestCaseData> Stochastic()
    {
        foreach (var kind in TestDevices.Kinds)
        {
            yield return new TestCaseData(kind, "EulerAncestralDiscreteScheduler", "");
            yield return new TestCaseData(kind, "DPMSolverMultistepScheduler", ",\"algorithm_type\":\"sde-dpmsolver++\"");
            yield return new TestCaseData(kind, "DPMSolverMultistepScheduler", ",\"algorithm_type\":\"sde-dpmsolver++\",\"solver_order\":3");
            yield return new TestCaseData(kind, "DDPMScheduler", ",\"clip_sample\":false");
            yield return new TestCaseData(kind, "dpmpp_2s_a", "");
        }
    }

    private static float[] Run(Device device, string cls, string extra, int batch, int firstSample, int sample)
    {
        using var sch = cls == "dpmpp_2s_a"
            ? new DpmPp2sAncestralScheduler(Cfg("EulerAncestralDiscreteScheduler", extra), 20)
            : SchedulerFactory.Create(Cfg(cls, extra), 20);
        sch.Noise = new PhiloxNoise(42, firstSample);
        using var model = new AnalyticGaussian(device, Mu, S, One, sch.Config);
        using var x = device.Allocate(batch, 3, 4, 4);
        Sampler.InitialNoise(sch, x, 42, firstSample);
        Sampler.Run(sch, model, x);
        return x.ToArray().AsSpan((sample - firstSample) * 48, 48).ToArray();
    }

    [TestCaseSource(nameof(Stochastic))]
    public void SameSeedSameSampleAtBatch1And64(string kind, string cls, string extra)
    {
        var device = TestDevices.Get(kind);
        var inBatch = Run(device, cls, extra, batch: 64, firstSample: 0, sample: 37);
        var alone = Run(device, cls, extra, batch: 1, firstSample: 37, sample: 37);
        Assert.That(inBatch.All(float.IsFinite), Is.True);
        Assert.That(Fixtures.RelativeError(alone, inBatch), Is.LessThanOrEqualTo(1e-6), "sample 37 alone vs in a batch of 64");
        var other = Run(device, cls, extra, batch: 1, firstSample: 36, sample: 36);
        Assert.That(Fixtures.RelativeError(other, inBatch), Is.GreaterThan(1e-3), "different samples get different noise");
    }

    [TestCase("DPMSolverMultistepScheduler", ",\"algorithm_type\":\"sde-dpmsolver++\",\"solver_order\":3")]
    [TestCase("UniPCMultistepScheduler", ",\"solver_order\":3")]
    [TestCase("HeunDiscreteScheduler", "")]
    [TestCase("PNDMScheduler", "")]
    [TestCase("LMSDiscreteScheduler", "")]
    public void TwentyStepRunDownloadsNothingAndAllocatesNothingAfterWarmUp(string cls, string extra)
    {
        var device = TestDevices.Get("cpu");
        using var sch = SchedulerFactory.Create(Cfg(cls, extra), 20);
        sch.Noise = new PhiloxNoise(7);
        using var model = new AnalyticGaussian(device, Mu, S, One, sch.Config);
        using var x = device.Allocate(2, 3, 4, 4);
        Sampler.InitialNoise(sch, x, 7);
        Sampler.Run(sch, model, x); // warm-up: scratch slots and model buffers
        Sampler.InitialNoise(sch, x, 7);
        long downloads = device.Transfers.Downloads, uploads = device.Transfers.Uploads, allocations = device.Transfers.Allocations;
        Sampler.Run(sch, model, x);
        Assert.That(device.Transfers.Downloads - downloads, Is.Zero, "downloads during the run");
        Assert.That(device.Transfers.Uploads - uploads, Is.Zero, "uploads during the run");
        Assert.That(device.Transfers.Allocations - allocations, Is.Zero, "fresh allocations during the run");
        Assert.That(x.ToArray().All(float.IsFinite), Is.True);
        Assert.That(device.Transfers.Downloads - downloads, Is.EqualTo(1), "the one download at the end");
    }
}
