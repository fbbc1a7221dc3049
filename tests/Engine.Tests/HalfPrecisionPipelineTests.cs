using Engine.Core;
using Engine.Generation;
using Engine.Jobs;

namespace Engine.Tests;

/// <summary>
/// Whole pipelines with half-precision activations (<see cref="GenerationRequest.Precision"/>) on the ILGPU
/// device against diffusers' float32 references: text encoder, denoiser and VAE run in F16 or BF16, the
/// sampler state and the tensors between the networks stay float32. End-to-end tolerances (max|err| /
/// max|ref| of the final latents and the decoded image): fp16 1e-2, bf16 5e-2. Requests that ask the
/// float32-only CPU device for half activations fail before any work, naming <c>--precision</c>.
/// </summary>
public class HalfPrecisionPipelineTests
{
    private const double F16Tolerance = 1e-2, BF16Tolerance = 5e-2;

    public static IEnumerable<TestCaseData> Cases()
    {
        if (Fixtures.Root is null) yield break;
        foreach (var kind in TestDevices.Kinds.Where(k => k != "cpu"))
        {
            // The SD pipeline (CLIP, UNet, VAE) takes many minutes on the CPU accelerator: GPUs only.
            if (kind != "ilgpu-cpu")
                yield return new TestCaseData("pipelines/sd_tiny", "reference_0", kind, DType.F16).SetName($"Pipeline sd_tiny on {kind} with f16 activations");
            yield return new TestCaseData("pipelines/dit_pipe_tiny", "reference_0", kind, DType.BF16).SetName($"Pipeline dit_pipe_tiny on {kind} with bf16 activations");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void StaysWithinHalfTolerance(string folder, string reference, string kind, DType precision)
    {
        var json = Fixtures.Json($"{folder}/{reference}.json", Engine.Sampling.SchedulerConfig.SanitizeJson);
        using var tensors = Fixtures.Tensors($"{folder}/{reference}.safetensors");
        var request = PipelineReference.Request(json, tensors) with { Precision = precision };
        var generator = new Generator(TestDevices.Get(kind));
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), folder, "pipeline"));
        var result = generator.Generate(model, request);
        double latents = Fixtures.RelativeError(result.Samples, tensors.ReadFloats("latents_final"));
        double image = Fixtures.RelativeError(result.Image!, PipelineReference.NhwcToNchw(tensors.ReadFloats("image"), tensors.Info("image").Shape));
        TestContext.Out.WriteLine($"{folder} {reference} on {kind}, {precision}: latents {latents:E2}, image {image:E2}");
        double tolerance = precision == DType.F16 ? F16Tolerance : BF16Tolerance;
        Assert.That(latents, Is.LessThanOrEqualTo(tolerance), "final latents");
        Assert.That(image, Is.LessThanOrEqualTo(tolerance), "image");
        // The float32 run meets 1e-3 (PipelineReferenceTests): a half run that lands there never rounded.
        Assert.That(Math.Max(latents, image), Is.GreaterThan(1e-5), "activations were rounded");
        Assert.That(model.Network.Activations, Is.EqualTo(precision));
        Assert.That(model.Pipeline!.Vae.Activations, Is.EqualTo(precision));
    }

    [Test]
    public void CpuDeviceRefusesHalfPrecisionBeforeWork()
    {
        var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "dit_pipe_tiny", "pipeline"));
        var request = new GenerationRequest { ClassLabels = [1], Steps = 2, Precision = DType.F16 };
        var e = Assert.Throws<ArgumentException>(() => generator.OutputShape(model, request))!;
        Assert.That(e.Message, Does.Contain("--precision").And.Contain("f16"));
        Assert.That(ActivationPrecision.Resolve(TestDevices.Get("cpu"), null), Is.EqualTo(DType.F32), "cpu default");
        Assert.That(model.Network.Activations, Is.EqualTo(DType.F32));
    }

    [Test]
    public void JobLinePrecisionMapsOntoTheRequest()
    {
        var result = JobFile.Read(new StringReader("{\"model\": \"m\", \"precision\": \"bf16\"}\n{\"model\": \"m\"}\n{\"model\": \"m\", \"precision\": \"f8\"}"), "jobs.jsonl");
        Assert.That(result.Jobs[0].ToRequest().Precision, Is.EqualTo(DType.BF16));
        Assert.That(result.Jobs[1].ToRequest().Precision, Is.Null);
        Assert.That(result.Errors.Single().Message, Does.Contain("precision").And.Contain("f8"));
    }
}
