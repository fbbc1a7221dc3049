using Engine.Sampling.KDiffusion;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Tests;

/// <summary>ComfyUI's schedules beyond the fixtures' normal and karras, against their definitions, and the name catalog.</summary>
[TestFixture]
public class ComfySchedulesTests
{
    private static readonly TrainingSchedule Sd15 = new(SchedulerConfig.ParseJson(
        """{"_class_name":"EulerDiscreteScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012}"""));

    private static double F(double v) => (float)v;

    [Test]
    public void SgmUniformStopsAtSigmaOfTMaxOverN()
    {
        var g = ComfySchedules.Build(Sd15, "sgm_uniform", 10);
        Assert.That(g, Has.Length.EqualTo(11));
        Assert.That(g[0], Is.EqualTo(F(Sd15.Sigmas[999])).Within(1e-6));
        // linspace(999, 0, 11) without its last point: the last step starts at t = 99.9, not at sigma_min.
        Assert.That(g[9], Is.EqualTo(Sd15.SigmaAt(99.9)).Within(1e-6 * g[9]));
        Assert.That(g[10], Is.EqualTo(0));
    }

    [Test]
    public void SimpleTruncatesTheStride()
    {
        var g = ComfySchedules.Build(Sd15, "simple", 7);
        int[] idx = [999, 857, 714, 571, 428, 285, 142]; // 999 - int(i * 1000 / 7)
        Assert.That(g.Take(7), Is.EqualTo(idx.Select(i => F(Sd15.Sigmas[i]))));
        Assert.That(g[^1], Is.EqualTo(0));
    }

    [Test]
    public void DdimUniformTakesEveryStrideFromOneAndMayGiveMoreSteps()
    {
        var g10 = ComfySchedules.Build(Sd15, "ddim_uniform", 10);
        Assert.That(g10, Is.EqualTo(new[] { 901, 801, 701, 601, 501, 401, 301, 201, 101, 1 }.Select(i => F(Sd15.Sigmas[i])).Append(0)));
        var g7 = ComfySchedules.Build(Sd15, "ddim_uniform", 7); // stride 142: 1, 143, ..., 995 is 8 steps
        Assert.That(g7, Has.Length.EqualTo(9));
        Assert.That(g7[0], Is.EqualTo(F(Sd15.Sigmas[995])));
    }

    [Test]
    public void ExponentialIsLogLinearBetweenSigmaMaxAndSigmaMin()
    {
        var g = ComfySchedules.Build(Sd15, "exponential", 8);
        Assert.That(g[0], Is.EqualTo(F(Sd15.Sigmas[999])).Within(1e-5));
        Assert.That(g[7], Is.EqualTo(F(Sd15.Sigmas[0])).Within(1e-6));
        double ratio = g[1] / g[0];
        for (int i = 1; i < 7; i++) Assert.That(g[i + 1] / g[i], Is.EqualTo(ratio).Within(1e-5), $"step {i}");
    }

    [Test]
    public void BetaUsesRoundedQuantilesOfTheTimestepRange()
    {
        var g = ComfySchedules.Build(Sd15, "beta", 10);
        Assert.That(g[0], Is.EqualTo(F(Sd15.Sigmas[999])), "ppf(1) = 1");
        Assert.That(g[5], Is.EqualTo(F(Sd15.Sigmas[500])), "symmetric Beta(0.6, 0.6): ppf(0.5) = 0.5, rint(499.5) = 500");
        for (int i = 0; i + 1 < g.Length; i++) Assert.That(g[i + 1], Is.LessThan(g[i]), $"strictly decreasing at {i}");
    }

    [Test]
    public void Dpm2DropsThePenultimateSigmaOfAGridOneStepLonger()
    {
        var model = SchedulerConfig.ParseJson("""{"_class_name":"EulerDiscreteScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012}""");
        using var dpm2 = SamplerNames.Create(model, "dpm_2", "karras", 6);
        var longer = ComfySchedules.Build(Sd15, "karras", 7);
        Assert.That(dpm2.Sigmas, Is.EqualTo(longer.Take(6).Append(0.0)));
        Assert.That(dpm2.CallCount, Is.EqualTo(2 * 6 - 1), "two calls per step, one on the last");
    }

    [TestCase("euler_ancestral", "euler_a")]
    [TestCase("dpm_2_ancestral", "dpm_2_a")]
    [TestCase("dpmpp_2s_ancestral", "dpmpp_2s_a")]
    [TestCase("DPMPP_2M", "dpmpp_2m")]
    public void ComfyUISpellingsAreAccepted(string comfy, string ours)
    {
        Assert.That(SamplerNames.Canonical(comfy), Is.EqualTo(ours));
        Assert.That(SamplerNames.ConventionOf(ours), Is.EqualTo(NameConvention.ComfyUI));
    }

    [TestCase("uni_pc", "unipc_bh1")]
    [TestCase("dpmpp_2m_sde_gpu", "dpmpp_2m_sde")]
    [TestCase("heunpp2", "heun")]
    public void UnavailableComfyUINamesNameTheNearest(string comfy, string nearest)
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SamplerNames.Canonical(comfy));
        Assert.That(e!.Message, Does.Contain($"'{comfy}'").And.Contain($"'{nearest}'"));
        Assert.That(SamplerNames.Samplers.Select(s => s.Name), Does.Contain(nearest));
    }

    [Test]
    public void EngineAndDiffusersNamesKeepTheirConvention()
    {
        Assert.That(SamplerNames.ConventionOf("deis_tab"), Is.EqualTo(NameConvention.Engine));
        Assert.That(SamplerNames.ConventionOf("dpmpp_3m_exact"), Is.EqualTo(NameConvention.Engine));
        Assert.That(SamplerNames.ConventionOf("unipc"), Is.EqualTo(NameConvention.Diffusers));
        var model = SchedulerConfig.ParseJson("{}", "DDPMScheduler");
        Assert.That(() => SamplerNames.Resolve(model, "deis_tab", "ddim_uniform"), Throws.TypeOf<SchedulerConfigException>().With.Message.Contain("ddim_uniform"));
        Assert.That(() => SamplerNames.Resolve(model, "euler", "warp"), Throws.TypeOf<SchedulerConfigException>().With.Message.Contain("ddim_uniform"));
        Assert.That(SamplerNames.Describe(), Does.Contain("comfyui").And.Contain("uni_pc"));
    }
}
