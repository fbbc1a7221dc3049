using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Generation;

namespace Engine.Tests;

/// <summary>
/// Few-step students through the pipeline: the two <c>fewstep/pipelines</c> references (sd_tiny with LCMScheduler,
/// guidance 1, and with TCDScheduler, gamma 0.3 and guidance 3) from the recorded x_T and step_noise, within 1e-3
/// of the largest reference value on the CPU device; and Turbo settings (ancestral Euler, trailing spacing, one
/// step, guidance 0) evaluating no negative branch.
/// </summary>
public class FewStepPipelineTests
{
    public static IEnumerable<TestCaseData> References() =>
        Fixtures.Names("fewstep/pipelines").Select(n => new TestCaseData(n).SetName($"FewStepPipeline({n})"));

    [TestCaseSource(nameof(References))]
    public void ReproducesDiffusersWithRecordedDraws(string reference)
    {
        var json = Fixtures.Json($"fewstep/pipelines/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"fewstep/pipelines/{reference}.safetensors");
        var kwargs = json.GetProperty("call_kwargs");
        var config = JsonNode.Parse(json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = json.GetProperty("scheduler").GetProperty("class").GetString();
        // Every recorded draw of these references is a scheduler draw, in call order.
        var draws = json.GetProperty("random_draws").EnumerateArray().Select(d => d.GetProperty("name").GetString()!).ToArray();
        var prompts = kwargs.GetProperty("prompt").EnumerateArray().Select(e => e.GetString()!).ToArray();
        var request = new GenerationRequest
        {
            SchedulerConfigJson = config.ToJsonString(),
            Steps = kwargs.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = kwargs.GetProperty("guidance_scale").GetDouble(),
            Eta = kwargs.TryGetProperty("eta", out var eta) ? eta.GetDouble() : null,
            Prompts = prompts,
            NegativePrompts = kwargs.TryGetProperty("negative_prompt", out var neg) ? neg.EnumerateArray().Select(e => e.GetString()!).ToArray() : null,
            Height = kwargs.GetProperty("height").GetInt32(),
            Width = kwargs.GetProperty("width").GetInt32(),
            Count = prompts.Length,
            InitialNoise = tensors.ReadFloats("x_T"),
            StepNoise = draws.SelectMany(tensors.ReadFloats).ToArray(),
        };
        var generator = new Generator(TestDevices.Get("cpu"));
        string folder = Path.GetFullPath(Path.Combine(Fixtures.RequireRoot(), "fewstep", "pipelines", json.GetProperty("pipeline_folder").GetString()!));
        using var model = generator.LoadModel(folder);
        var result = generator.Generate(model, request);
        double latents = Fixtures.RelativeError(result.Samples, tensors.ReadFloats("latents_final"));
        TestContext.Out.WriteLine($"{reference}: latents {latents:E2}");
        Assert.That(latents, Is.LessThanOrEqualTo(1e-3), "final latents");
        Assert.That(result.ModelCalls, Is.EqualTo(json.GetProperty("n_denoiser_calls").GetInt32()), "denoiser calls");
        // One draw short is refused before sampling, naming step_noise.
        var shortRequest = request with { StepNoise = request.StepNoise[..(request.StepNoise.Length / draws.Length * (draws.Length - 1))] };
        var e = Assert.Throws<ArgumentException>(() => generator.Generate(model, shortRequest));
        Assert.That(e!.Message, Does.Contain("step_noise"));
    }

    [Test]
    public void TurboSettingsRunOneStepWithoutTheNegativeBranch()
    {
        var warnings = new List<string>();
        var generator = new Generator(TestDevices.Get("cpu")) { Warning = warnings.Add };
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline"));
        // SD-Turbo's scheduler: EulerAncestralDiscreteScheduler, trailing spacing, steps_offset 1; one step, guidance 0.
        const string turbo = """{"_class_name":"EulerAncestralDiscreteScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012,"steps_offset":1,"timestep_spacing":"trailing"}""";
        var request = new GenerationRequest
        {
            SchedulerConfigJson = turbo, Steps = 1, GuidanceScale = 0, Prompts = ["a photo of a cat"], NegativePrompts = ["blurry"],
            Height = 16, Width = 16, Count = 1, Seed = 3,
        };
        // Ancestral Euler's step takes no eta: dropped with a warning, as diffusers' pipelines drop it.
        var zero = generator.Generate(model, request with { Eta = 0.5 });
        Assert.That(warnings.Any(w => w.Contains("eta 0.5 is ignored")), string.Join("; ", warnings));
        var one = generator.Generate(model, request with { GuidanceScale = 1, NegativePrompts = null });
        var guided = generator.Generate(model, request with { GuidanceScale = 2 });
        Assert.That(zero.ModelCalls, Is.EqualTo(1), "one step, one forward");
        // Guidance 0 and 1 are the conditional model alone (diffusers guides only above 1): the negative prompt is never evaluated.
        Assert.That(zero.Samples, Is.EqualTo(one.Samples));
        Assert.That(guided.Samples, Is.Not.EqualTo(zero.Samples), "guidance 2 does use the negative prompt");
    }
}
