using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Generation;

namespace Engine.Tests;

/// <summary>
/// One diffusers whole-pipeline reference (a <c>reference_*.json</c> beside its <c>.safetensors</c>): the request
/// its <c>call_kwargs</c> and scheduler describe, with the recorded x_T, and the comparison of a result with the
/// recorded final latents and image (within 1e-3 of the largest reference value, as the fixtures' README states).
/// Shared by the pipeline, LoRA and single-file reference tests.
/// </summary>
internal static class PipelineReference
{
    /// <summary>The request the reference's call made: scheduler (class and config), steps, guidance, prompts or class labels, size, SDXL sizes (negative ones too), clip skip and x_T.</summary>
    public static GenerationRequest Request(JsonElement json, SafetensorsFile tensors)
    {
        var kwargs = json.GetProperty("call_kwargs");
        var config = JsonNode.Parse(json.GetProperty("scheduler").GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = json.GetProperty("scheduler").GetProperty("class").GetString();
        var request = new GenerationRequest
        {
            SchedulerConfigJson = config.ToJsonString(),
            Steps = kwargs.GetProperty("num_inference_steps").GetInt32(),
            GuidanceScale = kwargs.GetProperty("guidance_scale").GetDouble(),
            Prompts = Texts(kwargs, "prompt"),
            NegativePrompts = Texts(kwargs, "negative_prompt"),
            ClassLabels = Ints(kwargs, "class_labels"),
            Height = Int(kwargs, "height") ?? 0,
            Width = Int(kwargs, "width") ?? 0,
            ClipSkip = Int(kwargs, "clip_skip"),
            InitialNoise = tensors.ReadFloats("x_T"),
            OriginalSize = Ints(kwargs, "original_size"),
            CropTopLeft = Ints(kwargs, "crops_coords_top_left"),
            TargetSize = Ints(kwargs, "target_size"),
            NegativeOriginalSize = Ints(kwargs, "negative_original_size"),
            NegativeCropTopLeft = Ints(kwargs, "negative_crops_coords_top_left"),
            NegativeTargetSize = Ints(kwargs, "negative_target_size"),
        };
        return request with { Count = request.Prompts?.Count ?? request.ClassLabels!.Length };
    }

    /// <summary>Asserts the final latents and the image of <paramref name="result"/> within <paramref name="tolerance"/> (1e-3; bf16 compute: 2e-2) of the recorded ones.</summary>
    public static void AssertReproduced(GenerationResult result, SafetensorsFile tensors, string name, double tolerance = 1e-3)
    {
        double latents = Fixtures.RelativeError(result.Samples, tensors.ReadFloats("latents_final"));
        double image = Fixtures.RelativeError(result.Image!, NhwcToNchw(tensors.ReadFloats("image"), tensors.Info("image").Shape));
        TestContext.Out.WriteLine($"{name}: latents {latents:E2}, image {image:E2}");
        Assert.That(latents, Is.LessThanOrEqualTo(tolerance), "final latents");
        Assert.That(image, Is.LessThanOrEqualTo(tolerance), "image");
    }

    /// <summary>diffusers' images are [N, H, W, C]; the engine's are [N, C, H, W].</summary>
    public static float[] NhwcToNchw(float[] values, IReadOnlyList<int> shape)
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

    private static int? Int(JsonElement kwargs, string name) =>
        kwargs.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetInt32() : null;

    private static int[]? Ints(JsonElement kwargs, string name) =>
        kwargs.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Array ? v.EnumerateArray().Select(e => e.GetInt32()).ToArray() : null;

    private static IReadOnlyList<string>? Texts(JsonElement kwargs, string name) =>
        !kwargs.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null ? null
        : v.ValueKind == JsonValueKind.String ? [v.GetString()!]
        : v.EnumerateArray().Select(e => e.GetString() ?? "").ToArray();
}
