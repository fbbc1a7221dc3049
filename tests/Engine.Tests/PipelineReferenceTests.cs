using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Tests;

/// <summary>
/// Stable Diffusion, SDXL, SD3 and DiT pipeline folders against diffusers' whole-pipeline references (fixtures
/// <c>pipelines/sd_tiny</c>, <c>pipelines/sdxl_tiny</c>, <c>pipelines/sd3_tiny_pipe</c>, <c>pipelines/dit_pipe_tiny</c>): the prompt embeddings (and SDXL's pooled ones) within 1e-4, the final latents and the decoded
/// image within 1e-3 of the largest reference value, on the CPU device from the recorded x_T.
/// </summary>
public class PipelineReferenceTests
{
    private static readonly string[] Classes = ["StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline", "DiTPipeline"];

    public static IEnumerable<TestCaseData> TextToImageCases()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var pipeline in new[] { "sd_tiny", "sdxl_tiny", "sd3_tiny_pipe", "dit_pipe_tiny" })
            foreach (var name in Fixtures.Names($"pipelines/{pipeline}", "reference_*.json"))
            {
                var json = Fixtures.Json($"pipelines/{pipeline}/{name}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
                if (Classes.Contains(json.GetProperty("pipeline_class").GetString()))
                    yield return new TestCaseData($"pipelines/{pipeline}", name).SetName($"Pipeline({pipeline},{name})");
            }
    }

    [TestCaseSource(nameof(TextToImageCases))]
    public void ReproducesDiffusersPipeline(string folder, string reference)
    {
        var json = Fixtures.Json($"{folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{folder}/{reference}.safetensors");
        var request = PipelineReference.Request(json, tensors);

        var device = TestDevices.Get("cpu"); // shared by the tests: not disposed here
        var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), folder, "pipeline"));
        if (model.Pipeline!.Prompts is { } encoder)
            CheckEmbeddings(encoder, request, tensors);

        var result = generator.Generate(model, request);
        PipelineReference.AssertReproduced(result, tensors, reference);
        Assert.That(result.ModelCalls, Is.EqualTo(json.GetProperty("n_denoiser_calls").GetInt32()));
    }

    /// <summary>
    /// The same references with bf16 GEMM and convolution inputs (float32 accumulation, norms and softmax):
    /// final latents and image within 2e-2 of the largest reference value. Skipped where the CPU has no bf16 compute.
    /// </summary>
    [TestCaseSource(nameof(TextToImageCases))]
    public void ReproducesDiffusersPipelineInBf16(string folder, string reference)
    {
        var device = TestDevices.Get("cpu"); // shared by the tests: not disposed here
        if (device.ComputeUnavailableReason(Engine.Core.ComputePrecision.Bf16) is { } reason) Assert.Ignore($"bf16 compute unavailable: {reason}");
        var json = Fixtures.Json($"{folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{folder}/{reference}.safetensors");
        var request = PipelineReference.Request(json, tensors) with { Compute = Engine.Core.ComputeMode.Bf16 };
        var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), folder, "pipeline"));
        var result = generator.Generate(model, request);
        PipelineReference.AssertReproduced(result, tensors, $"{reference} in bf16", tolerance: 2e-2);
        Assert.That(device.Compute, Is.EqualTo(Engine.Core.ComputePrecision.F32), "the request's compute precision is restored afterwards");
    }

    private static void CheckEmbeddings(Engine.Generation.Pipelines.PromptEncoder encoder, GenerationRequest request, SafetensorsFile tensors)
    {
        var device = encoder.Encoder.Device!;
        var (embeds, pooled) = encoder.EncodeWithPooled(request.Prompts!, null, null);
        using (embeds)
        using (pooled)
        {
            Assert.That(Fixtures.RelativeError(device.Download(embeds), tensors.ReadFloats("prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "prompt_embeds");
            if (pooled is not null)
                Assert.That(Fixtures.RelativeError(device.Download(pooled), tensors.ReadFloats("pooled_prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "pooled_prompt_embeds");
        }
        if (request.NegativePrompts is not null)
            using (var negative = encoder.Encode(request.NegativePrompts, null, null))
                Assert.That(Fixtures.RelativeError(device.Download(negative), tensors.ReadFloats("negative_prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "negative_prompt_embeds");
    }
}
