namespace Engine.Sampling.Tests;

/// <summary>Config parsing errors and the short-name catalog.</summary>
[TestFixture]
public class ConfigAndCatalogTests
{
    [TestCase("""{"_class_name":"FooScheduler"}""", "_class_name")]
    [TestCase("""{"_class_name":"EulerDiscreteScheduler","beta_schedule":"sigmoid"}""", "beta_schedule")]
    [TestCase("""{"_class_name":"EulerDiscreteScheduler","prediction_type":"x0"}""", "prediction_type")]
    [TestCase("""{"_class_name":"DPMSolverMultistepScheduler","solver_order":5}""", "solver_order")]
    [TestCase("""{"_class_name":"UniPCMultistepScheduler","solver_type":"bh3"}""", "solver_type")]
    [TestCase("""{"_class_name":"EulerDiscreteScheduler","num_train_timesteps":"many"}""", "num_train_timesteps")]
    [TestCase("""{"_class_name":"DDIMScheduler","timestep_spacing":"cosine"}""", "timestep_spacing")]
    [TestCase("""[1,2]""", "object")]
    [TestCase("""{"_class_name":""", "JSON")]
    public void BadConfigNamesTheField(string json, string field)
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.ParseJson(json));
        Assert.That(e!.Message, Does.Contain(field));
    }

    [TestCase("""{"beta_start":0.02,"beta_end":0.0001}""", "beta_start 0.02 must be less than beta_end 0.0001 (0 < beta_start < beta_end < 1)")]
    [TestCase("""{"beta_schedule":"scaled_linear","beta_start":0.012,"beta_end":0.012}""", "beta_start 0.012 must be less than beta_end 0.012")]
    [TestCase("""{"num_train_timesteps":2000000000}""", "num_train_timesteps 2000000000 must be from 2 to 1000000")]
    [TestCase("""{"steps_offset":-1}""", "steps_offset -1 must be from 0 to num_train_timesteps - 1 (999)")]
    [TestCase("""{"steps_offset":1000}""", "steps_offset 1000 must be from 0")]
    public void OutOfRangeScheduleIsNamedWithItsRange(string json, string message)
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.ParseJson(json, "DDIMScheduler"));
        Assert.That(e!.Message, Does.Contain(message));
    }

    // Each of these ran (or failed mid-run with a .NET message) before: x0 clipped to nothing, a thresholding
    // quantile above 1, a threshold of 0 (NaN samples), noise levels of 0, below 0 or inverted.
    [TestCase("""{"clip_sample":true,"clip_sample_range":0}""", "clip_sample_range 0 must be > 0")]
    [TestCase("""{"clip_sample_range":-1}""", "clip_sample_range -1 must be > 0")]
    [TestCase("""{"thresholding":true,"dynamic_thresholding_ratio":2}""", "dynamic_thresholding_ratio 2 must lie in (0, 1]")]
    [TestCase("""{"thresholding":true,"sample_max_value":0}""", "sample_max_value 0 must be > 0")]
    [TestCase("""{"sigma_min":-1}""", "sigma_min -1 must be a finite number > 0")]
    [TestCase("""{"sigma_max":0}""", "sigma_max 0 must be a finite number > 0")]
    [TestCase("""{"sigma_min":5,"sigma_max":1}""", "sigma_min 5 must be less than sigma_max 1")]
    public void OutOfRangeSampleLimitsAndSigmaBoundsAreNamed(string json, string message)
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.ParseJson(json, "DDIMScheduler"));
        Assert.That(e!.Message, Does.Contain(message));
    }

    // LCM with timestep_scaling <= 0 returned the noisy input unchanged (c_out 0); UniPC took negative step indices.
    [TestCase("LCMScheduler", """{"timestep_scaling":0}""", "timestep_scaling 0 must be a finite number > 0")]
    [TestCase("LCMScheduler", """{"timestep_scaling":-10}""", "timestep_scaling -10 must be a finite number > 0")]
    [TestCase("UniPCMultistepScheduler", """{"disable_corrector":[0,-1]}""", "disable_corrector holds -1")]
    public void ClassOptionsOutOfRangeAreNamed(string className, string json, string message)
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.ParseJson(json, className));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [TestCase("LCMScheduler", """{"timestep_scaling":10}""")]
    [TestCase("UniPCMultistepScheduler", """{"disable_corrector":[0,3]}""")]
    public void ClassOptionsInRangeAreTaken(string className, string json) =>
        Assert.That(SchedulerConfig.ParseJson(json, className).ClassName, Is.EqualTo(className));

    [Test]
    public void CosineScheduleIgnoresTheBetaBounds() =>
        Assert.That(SchedulerConfig.ParseJson("""{"beta_schedule":"squaredcos_cap_v2","beta_start":0.02,"beta_end":0.0001}""", "DDIMScheduler").BetaSchedule, Is.EqualTo("squaredcos_cap_v2"));

    [Test]
    public void UnknownExtraFieldsAreIgnoredAndDefaultsFollowTheClass()
    {
        var c = SchedulerConfig.ParseJson("""{"_class_name":"DDIMScheduler","_diffusers_version":"0.31.0","some_future_field":3}""");
        Assert.That(c.ClipSample, Is.True, "DDIM defaults to clip_sample");
        Assert.That(c.TimestepSpacing, Is.EqualTo("leading"));
        var e = SchedulerConfig.ParseJson("""{"_class_name":"EulerDiscreteScheduler"}""");
        Assert.That(e.TimestepSpacing, Is.EqualTo("linspace"));
        Assert.That(e.ClipSample, Is.False);
    }

    [Test]
    public void BadStepCountsAreRejected()
    {
        var c = SchedulerConfig.ParseJson("""{"_class_name":"EulerDiscreteScheduler"}""");
        Assert.Throws<ArgumentOutOfRangeException>(() => SchedulerFactory.Create(c, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => SchedulerFactory.Create(c, 1001));
    }

    [Test]
    public void EveryCatalogCombinationBuildsAScheduler()
    {
        var model = SchedulerConfig.ParseJson("""{"_class_name":"PNDMScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"steps_offset":1}""");
        int built = 0;
        foreach (var s in SamplerNames.Samplers)
            foreach (var g in SamplerNames.Schedules)
            {
                SchedulerConfig c;
                try { c = SamplerNames.Resolve(model, s.Name, g.Name); }
                catch (SchedulerConfigException) { continue; } // grid not offered for this sampler; message checked below
                using var sch = SamplerNames.Create(model, s.Name, g.Name, 12);
                Assert.That(sch.CallCount, Is.GreaterThanOrEqualTo(12), $"{s.Name}/{g.Name}");
                Assert.That(sch.Timesteps.All(double.IsFinite), Is.True, $"{s.Name}/{g.Name}");
                built++;
            }
        Assert.That(built, Is.GreaterThan(80));
        var e = Assert.Throws<SchedulerConfigException>(() => SamplerNames.Resolve(model, "ddim", "karras"));
        Assert.That(e!.Message, Does.Contain("karras"));
        Assert.Throws<SchedulerConfigException>(() => SamplerNames.Resolve(model, "dpmpp_9m"));
        TestContext.Out.WriteLine(SamplerNames.Describe());
    }

    [Test]
    public void ThirdOrderNamesPickTheirUpdate()
    {
        var model = SchedulerConfig.ParseJson("""{"_class_name":"DDPMScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012}""");
        using var parity = SamplerNames.Create(model, "dpmpp_3m", "karras", 20);
        using var exact = SamplerNames.Create(model, "dpmpp_3m_exact", "karras", 20);
        Assert.That(parity, Is.TypeOf<Schedulers.DpmSolverMultistepScheduler>());
        Assert.That(((Schedulers.DpmSolverMultistepScheduler)parity).ExactThirdOrder, Is.False, "dpmpp_3m keeps diffusers' update");
        Assert.That(exact, Is.TypeOf<Schedulers.DpmSolverMultistepScheduler>());
        Assert.That(((Schedulers.DpmSolverMultistepScheduler)exact).ExactThirdOrder, Is.True);
        Assert.That(exact.Config.OptionsAs<Schedulers.DpmSolverMultistepScheduler.Options>().SolverOrder, Is.EqualTo(3));
        Assert.That(exact.Timesteps, Is.EqualTo(parity.Timesteps), "same grid, different update");
    }
}
