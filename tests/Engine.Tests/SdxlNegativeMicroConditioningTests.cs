using System.Text.Json;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Tests;

/// <summary>
/// SDXL negative micro-conditioning: diffusers' row layout of add_time_ids under classifier-free guidance (the pair
/// [negative, positive] repeated per image against text rows that are all negatives, then all positives) and the
/// ControlNet reference <c>controlnet/pipelines/sdxl_tiny/reference_0</c>, whose negative sizes differ from the
/// positive ones with two images, reproduced through <see cref="Generator"/> within 1e-3.
/// </summary>
public class SdxlNegativeMicroConditioningTests
{
    private static readonly GenerationRequest Sizes = new()
    {
        OriginalSize = [96, 64], CropTopLeft = [8, 4], TargetSize = [24, 16], NegativeOriginalSize = [32, 32], NegativeTargetSize = [24, 16],
    };

    private static readonly float[] Positive = [96, 64, 8, 4, 24, 16], Negative = [32, 32, 0, 0, 24, 16];

    private static float[] Concat(params float[][] rows) => rows.SelectMany(r => r).ToArray();

    [Test]
    public void GuidedRowsAlternateAsDiffusersRepeatsThePair()
    {
        // Two images: diffusers' rows [neg, pos, neg, pos] meet text rows [neg1, neg2, pos1, pos2].
        var (pos, neg) = MicroConditioning.Rows(Sizes, 2, 24, 16, guided: true);
        Assert.That(neg, Is.EqualTo(Concat(Negative, Positive)));
        Assert.That(pos, Is.EqualTo(Concat(Negative, Positive)));
        // Three images: [n, p, n | p, n, p].
        (pos, neg) = MicroConditioning.Rows(Sizes, 3, 24, 16, guided: true);
        Assert.That(neg, Is.EqualTo(Concat(Negative, Positive, Negative)));
        Assert.That(pos, Is.EqualTo(Concat(Positive, Negative, Positive)));
        // One image: each branch gets its own ids.
        (pos, neg) = MicroConditioning.Rows(Sizes, 1, 24, 16, guided: true);
        Assert.That((pos, neg), Is.EqualTo((Positive, Negative)));
    }

    [Test]
    public void DefaultsFollowDiffusers()
    {
        // Without guidance only the positive ids, repeated.
        var (pos, neg) = MicroConditioning.Rows(Sizes, 2, 24, 16, guided: false);
        Assert.That((pos, neg), Is.EqualTo((Concat(Positive, Positive), (float[]?)null)));
        // Without negative sizes the negative rows are the positive ones; the negative crop is its own (default 0,0).
        (pos, neg) = MicroConditioning.Rows(Sizes with { NegativeOriginalSize = null, NegativeTargetSize = null }, 2, 24, 16, guided: true);
        Assert.That((pos, neg), Is.EqualTo((Concat(Positive, Positive), Concat(Positive, Positive))));
        Assert.That(MicroConditioning.Rows(Sizes with { NegativeCropTopLeft = [2, 6] }, 1, 24, 16, guided: true).Negative, Is.EqualTo(new float[] { 32, 32, 2, 6, 24, 16 }));
        // No sizes at all: the image size and crop 0,0.
        Assert.That(MicroConditioning.Rows(new GenerationRequest(), 1, 24, 16, guided: false).Positive, Is.EqualTo(new float[] { 24, 16, 0, 0, 24, 16 }));
    }

    [TestCase(true, false, false, "--negative-target-size")]
    [TestCase(false, true, false, "--negative-original-size")]
    [TestCase(false, false, true, "--negative-crop-top-left")]
    public void NegativeSizesAloneAreRefused(bool original, bool target, bool crop, string option)
    {
        var request = new GenerationRequest
        {
            NegativeOriginalSize = original ? [32, 32] : null, NegativeTargetSize = target ? [24, 16] : null, NegativeCropTopLeft = crop ? [0, 0] : null,
        };
        var e = Assert.Catch<ArgumentException>(() => MicroConditioning.Check(request, supported: true, "pipeline 'p'"));
        Assert.That(e!.Message, Does.Contain(option));
        e = Assert.Catch<ArgumentException>(() => MicroConditioning.Check(Sizes with { NegativeTargetSize = [24, -1] }, supported: true, "pipeline 'p'"));
        Assert.That(e!.Message, Does.Contain("--negative-target-size").And.Contain("two integers >= 0"));
        e = Assert.Catch<ArgumentException>(() => MicroConditioning.Check(new GenerationRequest { NegativeOriginalSize = [1, 1], NegativeTargetSize = [1, 1] }, supported: false, "pipeline 'sd'"));
        Assert.That(e!.Message, Does.Contain("--negative-original-size").And.Contain("pipeline 'sd'"));
    }

    [Test]
    public void GeneratorReproducesControlNetSdxlReference()
    {
        if (Fixtures.Root is null) Assert.Ignore("fixtures not found (ENGINE_FIXTURES)");
        string dir = Path.Combine(Fixtures.RequireRoot(), "controlnet", "pipelines", "sdxl_tiny");
        var json = JsonDocument.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(Path.Combine(dir, "reference_0.json")))).RootElement;
        using var tensors = SafetensorsFile.Open(Path.Combine(dir, "reference_0.safetensors"));
        var shape = tensors.Info("control_image").Shape;
        var image = new ControlImage { Pixels = tensors.ReadFloats("control_image"), Count = shape[0], Channels = shape[1], Height = shape[2], Width = shape[3] };
        string net = Path.GetFullPath(Path.Combine(dir, json.GetProperty("controlnet_folders")[0].GetString()!));
        var request = PipelineReference.Request(json, tensors) with
        {
            ControlNets = [new ControlNetSpec(net, image) { Scale = json.GetProperty("controlnet_conditioning_scale").GetDouble() }],
        };
        Assert.That(request.NegativeOriginalSize, Is.EqualTo(new[] { 32, 32 }), "the reference's negative sizes reach the request");
        using var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(Path.GetFullPath(Path.Combine(dir, json.GetProperty("pipeline_folder").GetString()!)));
        PipelineReference.AssertReproduced(generator.Generate(model, request), tensors, "controlnet sdxl_tiny/reference_0");
        // Without the negative sizes the result is measurably off (0.026 before they were carried).
        var plain = generator.Generate(model, request with { NegativeOriginalSize = null, NegativeTargetSize = null });
        Assert.That(Fixtures.RelativeError(plain.Samples, tensors.ReadFloats("latents_final")), Is.GreaterThan(1e-2));
    }
}
