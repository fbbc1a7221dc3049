namespace Engine.Sampling.Tests;

/// <summary>What ComfyUI's samplers take besides a name and a schedule: no step eta, no custom timesteps; and a start part-way (img2img).</summary>
[TestFixture]
public class KSamplerArgumentTests
{
    // A model whose own class takes eta and custom timesteps, so only the ComfyUI sampler can refuse them.
    private static SchedulerConfig Sd => SchedulerConfig.ParseJson(
        """{"_class_name":"DDIMScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"steps_offset":1}""");

    [Test]
    public void EtaAndCustomTimestepsAreRefusedByName()
    {
        var eta = Assert.Throws<SchedulerConfigException>(() => SamplerNames.Create(Sd with { Eta = 0.5 }, "euler_a", null, 4));
        Assert.That(eta!.Message, Does.Contain("euler_a takes no eta"));
        var custom = Assert.Throws<SchedulerConfigException>(() => SamplerNames.Create(Sd with { CustomTimesteps = [999, 500, 250, 10] }, "dpmpp_2m", null, 4));
        Assert.That(custom!.Message, Does.Contain("dpmpp_2m takes no custom timesteps"));
    }

    [Test]
    public void StartPartWayUsesTheCallsSigmaAndTheFirstCallOfAStep()
    {
        using var heun = SamplerNames.Create(Sd, "heun", "karras", 5);
        // Heun makes two calls per step but one on the last step (to sigma 0): 2 + 2 + 2 + 2 + 1.
        Assert.That(heun.CallCount, Is.EqualTo(9));
        Assert.That(heun.FirstCallOfStep(3), Is.EqualTo(6));
        Assert.That(heun.CoordinatesAt(6), Is.EqualTo((1.0, heun.Sigmas![3])), "x0 + sigma eps at the step's own sigma");
        Assert.That(heun.CoordinatesAt(0), Is.EqualTo((1.0, heun.Sigmas[0])));
    }
}
