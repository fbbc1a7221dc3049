namespace Engine.Sampling.Tests;

/// <summary>The scheduler registry is consistent: every class builds, every short name resolves to a registered class.</summary>
[TestFixture]
public class RegistryTests
{
    [Test]
    public void ClassesAreUniqueAndEachBuildsItsScheduler()
    {
        Assert.That(SchedulerRegistry.SupportedClasses, Is.Unique);
        foreach (var cls in SchedulerRegistry.SupportedClasses)
        {
            var kind = SchedulerRegistry.Find(cls);
            Assert.That(kind?.Create, Is.Not.Null, cls);
            using var sch = SchedulerFactory.Create(SchedulerConfig.ParseJson("{}", cls), 10);
            Assert.That(sch.Config.ClassName, Is.EqualTo(cls));
        }
    }

    [Test]
    public void ShortNamesAreUniqueAndResolveToRegisteredClasses()
    {
        Assert.That(SamplerNames.Samplers.Select(s => s.Name), Is.Unique);
        Assert.That(SamplerNames.Samplers.Select(s => s.ListOrder), Is.Unique.And.Ordered);
        var model = SchedulerConfig.ParseJson("{}", "DDPMScheduler");
        foreach (var s in SamplerNames.Samplers)
            Assert.That(SchedulerRegistry.Find(SamplerNames.Resolve(model, s.Name).ClassName), Is.Not.Null, s.Name);
    }

    [Test]
    public void UnknownClassNamesTheSupportedOnes()
    {
        var e = Assert.Throws<SchedulerConfigException>(() => SchedulerFactory.Create(new SchedulerConfig { ClassName = "FooScheduler" }, 10));
        Assert.That(e!.Message, Does.Contain("FooScheduler").And.Contain(string.Join(", ", SchedulerRegistry.SupportedClasses)));
    }
}
