using Engine.Sampling.Schedulers;

namespace Engine.Sampling.Tests;

/// <summary>Each class reads its own options; a short name re-reads the new class's options from the model's keys.</summary>
[TestFixture]
public class SchedulerOptionsTests
{
    [Test]
    public void EveryClassReadsItsOwnOptions()
    {
        foreach (var cls in SchedulerRegistry.SupportedClasses)
        {
            var kind = SchedulerRegistry.Find(cls)!;
            Assert.That(kind.ReadOptions, Is.Not.Null, cls);
            var c = SchedulerConfig.ParseJson("{}", cls);
            using var sch = SchedulerFactory.Create(c, 10);
            Assert.That(kind.OptionsOf<SchedulerOptions>(c), Is.SameAs(c.Options), cls);
        }
        Assert.That(SchedulerConfig.ParseJson("{}", UniPcScheduler.DiffusersClass).Options, Is.TypeOf<UniPcScheduler.Options>());
        Assert.That(SchedulerConfig.ParseJson("{}", HeunScheduler.DiffusersClass).Options, Is.TypeOf<KarrasFormScheduler.Options>());
    }

    [Test]
    public void ShortNameRereadsTheModelKeysForItsClass()
    {
        var model = SchedulerConfig.ParseJson("""{"_class_name":"UniPCMultistepScheduler","solver_order":3,"lower_order_final":false,"lambda_min_clipped":-5.5,"predict_x0":false}""");
        // dpmpp_2m is ComfyUI's sampler now; dpmpp_2m_hb picks the same DPMSolverMultistep 2M options.
        var dpm = SamplerNames.Resolve(model, "dpmpp_2m_hb").OptionsAs<DpmSolverMultistepScheduler.Options>();
        Assert.That((dpm.SolverOrder, dpm.AlgorithmType, dpm.SolverType), Is.EqualTo((2, "dpmsolver++", "midpoint")), "the short name's own choices");
        Assert.That((dpm.LowerOrderFinal, dpm.LambdaMinClipped), Is.EqualTo((false, -5.5)), "the model's keys");
        var back = SamplerNames.Resolve(model, "unipc_bh1").OptionsAs<UniPcScheduler.Options>();
        Assert.That((back.SolverOrder, back.SolverType, back.PredictX0), Is.EqualTo((3, "bh1", false)));
    }

    [Test]
    public void AnotherClassesMalformedKeyIsStillRejected()
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerConfig.ParseJson("""{"_class_name":"EulerDiscreteScheduler","predict_x0":"yes"}"""));
        Assert.That(e!.Message, Does.Contain("predict_x0"));
        Assert.Throws<InvalidOperationException>(() => SchedulerConfig.ParseJson("{}", DdimScheduler.DiffusersClass).OptionsAs<UniPcScheduler.Options>());
    }
}
