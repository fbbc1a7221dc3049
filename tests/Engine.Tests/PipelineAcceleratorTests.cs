using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;

namespace Engine.Tests;

/// <summary>
/// The small pipeline fixtures on the other test devices (ILGPU's CPU accelerator unless <c>ENGINE_TEST_ILGPU=0</c>,
/// CUDA where enabled), component by component from reference 0's recorded tensors, since a whole run there takes
/// minutes: the prompt embeddings within 1e-4, the first denoiser call (recorded input, timestep and conditioning)
/// and the VAE decode of the final latents within 1e-3 of the largest reference value. <see cref="PipelineReferenceTests"/>
/// runs the whole pipelines on the CPU device.
/// </summary>
public class PipelineAcceleratorTests
{
    public static IEnumerable<TestCaseData> Cases()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var kind in TestDevices.Kinds.Where(k => k != "cpu"))
            foreach (var pipeline in new[] { "sd_tiny", "sd3_tiny_pipe", "dit_pipe_tiny" })
                yield return new TestCaseData(kind, pipeline).SetName($"PipelineComponents({kind},{pipeline})");
    }

    [TestCaseSource(nameof(Cases))]
    public void ComponentsReproduceReferenceZero(string kind, string pipeline)
    {
        var device = TestDevices.Get(kind);
        string folder = $"pipelines/{pipeline}";
        var json = Fixtures.Json($"{folder}/reference_0.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{folder}/reference_0.safetensors");
        using var model = new Generator(device).LoadModel(Path.Combine(Fixtures.RequireRoot(), folder, "pipeline"));
        var pipe = model.Pipeline!;

        using var embeds = tensors.Contains("prompt_embeds") ? tensors.Load(device, "prompt_embeds") : null;
        using var pooled = tensors.Contains("pooled_prompt_embeds") ? tensors.Load(device, "pooled_prompt_embeds") : null;
        if (pipe.Prompts is { } encoder)
        {
            var prompt = json.GetProperty("call_kwargs").GetProperty("prompt");
            string[] prompts = prompt.ValueKind == System.Text.Json.JsonValueKind.String ? [prompt.GetString()!] : prompt.EnumerateArray().Select(e => e.GetString()!).ToArray();
            var (e, p) = encoder.EncodeWithPooled(prompts, null, null);
            using (e)
            using (p)
            {
                Assert.That(Fixtures.RelativeError(device.Download(e), tensors.ReadFloats("prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "prompt_embeds");
                if (p is not null) Assert.That(Fixtures.RelativeError(device.Download(p), tensors.ReadFloats("pooled_prompt_embeds")), Is.LessThanOrEqualTo(1e-4), "pooled_prompt_embeds");
            }
        }

        var inputShape = tensors.Info("step_model_input").Shape.Skip(1).ToArray();
        var outputShape = tensors.Info("step_model_output").Shape.Skip(1).ToArray();
        int inputLength = inputShape.Aggregate(1, (a, b) => a * b), outputLength = outputShape.Aggregate(1, (a, b) => a * b);
        using var input = device.Upload(tensors.ReadFloats("step_model_input").AsSpan(0, inputLength).ToArray(), inputShape);
        using var timestep = device.Upload([tensors.ReadFloats("step_model_timestep")[0]], 1);
        // Class labels are stored as I64: read as floats.
        using var labels = tensors.Contains("class_labels_input") ? device.Upload(tensors.ReadFloats("class_labels_input"), 2) : null;
        using (var output = model.Network.Forward(input, timestep, labels, embeds, model.Network.NeedsPooledProjections ? pooled : null))
            Assert.That(Fixtures.RelativeError(device.Download(output), tensors.ReadFloats("step_model_output").AsSpan(0, outputLength)), Is.LessThanOrEqualTo(1e-3), "first denoiser call");

        using var latents = tensors.Load(device, "latents_final");
        var image = pipe.Decode(latents);
        var nchw = PipelineReference.NhwcToNchw(tensors.ReadFloats("image"), tensors.Info("image").Shape);
        Assert.That(Fixtures.RelativeError(image, nchw), Is.LessThanOrEqualTo(1e-3), "VAE decode");
    }
}
