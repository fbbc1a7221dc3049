using Engine.Generation;
using Engine.Jobs;

namespace Engine.Tests;

/// <summary>The one request type: a job line's mapping onto it and the seed rule's helpers.</summary>
public class RequestMappingTests
{
    [Test]
    public void JobLine_MapsOntoTheRequest()
    {
        var job = JobFile.Parse("""{"model":"m","sampler":"ddim","scheduler_config":"s.json","steps":7,"cfg":1.5,"device":"cpu","options":{"pag_scale":2.0,"pag_layers":"mid"}}""");
        var request = job.ToRequest();
        Assert.That((request.Model, request.Sampler, request.SchedulerConfigPath, request.Steps, request.GuidanceScale, request.Device),
            Is.EqualTo(("m", "ddim", "s.json", 7, 1.5, "cpu")));
        Assert.That(request.Options, Is.EqualTo(new[] { "pag_scale=2.0", "pag_layers=mid" }));
    }

    [Test]
    public void JobLineWithoutSettings_TakesTheRequestDefaults()
    {
        var request = JobFile.Parse("""{"model":"m"}""").ToRequest();
        Assert.That((request.Sampler, request.Steps, request.GuidanceScale, request.BatchSize, request.SamplerName),
            Is.EqualTo(((string?)null, GenerationRequest.DefaultSteps, GenerationRequest.DefaultGuidanceScale, 0, GenerationRequest.DefaultSampler)));
    }

    [Test]
    public void JobSeedWithCount_IsOneRequestPerSeed()
    {
        var job = JobFile.Parse("""{"model":"m","seed":10,"count":3,"classes":[4,5]}""");
        var requests = job.Images().Select(i => job.ToRequest().ForSeed(i.Seed, i.Class)).ToList();
        Assert.That(requests.Select(r => (r.Seed, r.Count, r.ClassLabels![0])), Is.EqualTo(new[] { (10UL, 1, 4), (11UL, 1, 5), (12UL, 1, 4) }));
    }

    [Test]
    public void ClassCycle_GivesImageITheLabelIModLength()
    {
        var request = new GenerationRequest { Count = 5 }.WithClassCycle([7, 8]);
        Assert.That(request.ClassLabels, Is.EqualTo(new[] { 7, 8, 7, 8, 7 }));
        Assert.That(request.WithClassCycle(null).ClassLabels, Is.Null);
        Assert.That(new GenerationRequest { Count = 40, BatchSize = 0 }.EffectiveBatchSize, Is.EqualTo(Generator.AutomaticBatchSize));
    }
}
