using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Tests;

/// <summary>
/// Stable Diffusion pipeline folders against diffusers' whole-pipeline references (fixtures
/// <c>pipelines/sd_tiny</c>): the prompt embeddings within 1e-4, the final latents and the decoded
/// image within 1e-3 of the largest reference value, on the CPU device from the recorded x_T.
/// </summary>
public class PipelineReferenceTests
{
    private const string Folder = "pipelines/sd_tiny";

    public static IEnumerable<TestCaseData> TextToImageCases()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var name in Fixtures.Names(Folder, "reference_*.json"))
        {
            var json = Fixtures.Json($"{Folder}/{name}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
            if (json.GetProperty("pipeline_class").GetString() == "StableDiffusionPipeline")
                yield return new TestCaseData(name).SetName($"SdTiny({name})");
        }
    }

    [TestCaseSource(nameof(TextToImageCases))]
    public void ReproducesDiffusersPipeline(string reference)
    {
        var json = Fixtures.Json($"{Folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{Folder}/{reference}.safetensors");
        var kwargs = json.GetProperty("call_kwargs");
        var config = JsonNode.Parse(json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = json.GetProperty("scheduler").GetProperty("class").GetString();
        var request = new GenerationRequest
        {
            SchedulerConfigJson = config.ToJsonString(),
            Steps = kwargs.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = kwargs.GetProperty("guidance_scale").GetDouble(),
            Prompts = Texts(kwargs, "prompt")!,
            NegativePrompts = Texts(kwargs, "negative_prompt"),
            Height = kwargs.GetProperty("height").GetInt32(),
            Width = kwargs.GetProperty("width").GetInt32(),
            InitialNoise = tensors.ReadFloats("x_T"),
        };
        request = request with { Count = request.Prompts!.Count };

        var device = TestDevices.Get("cpu"); // shared by the tests: not disposed here
        var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), Folder, "pipeline"));
        var encoder = model.Pipeline!.Prompts;
        using (var embeds = encoder.Encode(request.Prompts, null, null))
            Assert.That(Fixtures.RelativeError(device.Download(embeds), tensors.ReadFloats("prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "prompt_embeds");
        if (tensors.Contains("negative_prompt_embeds"))
            using (var embeds = encoder.Encode(request.NegativePrompts ?? [.. request.Prompts.Select(_ => "")], null, null))
                Assert.That(Fixtures.RelativeError(device.Download(embeds), tensors.ReadFloats("negative_prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "negative_prompt_embeds");

        var result = generator.Generate(model, request);
        double latents = Fixtures.RelativeError(result.Samples, tensors.ReadFloats("latents_final"));
        double image = Fixtures.RelativeError(result.Image!, NhwcToNchw(tensors.ReadFloats("image"), tensors.Info("image").Shape));
        TestContext.Out.WriteLine($"{reference}: latents {latents:E2}, image {image:E2}");
        Assert.That(latents, Is.LessThanOrEqualTo(1e-3), "final latents");
        Assert.That(image, Is.LessThanOrEqualTo(1e-3), "image");
        Assert.That(result.ModelCalls, Is.EqualTo(json.GetProperty("n_denoiser_calls").GetInt32()));
    }

    private static IReadOnlyList<string>? Texts(JsonElement kwargs, string name) =>
        !kwargs.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? [v.GetString()!]
        : v.EnumerateArray().Select(e => e.GetString() ?? "").ToArray();

    private static float[] NhwcToNchw(float[] values, IReadOnlyList<int> shape)
    {
        int n = shape[0], h = shape[1], w = shape[2], c = shape[3];
        var result = new float[values.Length];
        for (int i = 0; i < n; i++)
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++)
                    for (int ch = 0; ch < c; ch++)
                        result[((i * c + ch) * h + y) * w + x] = values[((i * h + y) * w + x) * c + ch];
        return result;
    }
}
