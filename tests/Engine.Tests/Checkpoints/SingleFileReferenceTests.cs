using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Generation.Checkpoints;

namespace Engine.Tests.Checkpoints;

/// <summary>
/// Single-file checkpoints (fixtures <c>single_file/</c>) against diffusers' references: each one-file checkpoint,
/// loaded with <c>config=</c> its pipeline folder, reproduces every text-to-image reference listed for it in
/// <c>index.json</c> (final latents and image within 1e-3 of the largest reference value, CPU device, recorded x_T);
/// converting a file to a pipeline folder gives the folder's tensors bit for bit (F32) and, loaded back, the same references.
/// </summary>
public class SingleFileReferenceTests
{
    private static readonly string[] TextToImage = ["StableDiffusionPipeline", "StableDiffusionXLPipeline"];

    public static IEnumerable<TestCaseData> Cases()
    {
        if (Fixtures.Root is null) yield break;
        var index = Fixtures.Json("single_file/index.json");
        foreach (var file in index.GetProperty("single_files").EnumerateArray())
            foreach (var r in file.GetProperty("references").EnumerateArray())
            {
                string reference = Path.GetFullPath(Path.Combine(Fixtures.Root, "single_file", r.GetString()!));
                var json = JsonDocument.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference))).RootElement;
                if (!TextToImage.Contains(json.GetProperty("pipeline_class").GetString())) continue;
                // A reference made from the file names its config folder; a folder's own reference uses that folder.
                string relative = json.TryGetProperty("config_folder", out var cf) && cf.ValueKind == JsonValueKind.String ? cf.GetString()!
                    : json.TryGetProperty("pipeline_folder", out var pf) && pf.ValueKind == JsonValueKind.String ? pf.GetString()! : "pipeline";
                string folder = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(reference)!, relative));
                string checkpoint = Path.Combine(Fixtures.Root, "single_file", file.GetProperty("file").GetString()!);
                yield return new TestCaseData(checkpoint, folder, reference[..^5]).SetName($"SingleFile({Path.GetFileName(checkpoint)},{Path.GetFileName(reference)})");
            }
    }

    [TestCaseSource(nameof(Cases))]
    public void CheckpointWithConfigFolderReproducesReference(string checkpoint, string configFolder, string reference)
    {
        var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(checkpoint, new CheckpointOptions { ConfigFolder = configFolder });
        Reproduce(generator, model, reference);
    }

    [Test]
    public void ConvertedF32FileHoldsTheFolderTensorsBitForBit()
    {
        string root = Fixtures.RequireRoot();
        string folder = Path.Combine(root, "pipelines/sd_tiny/pipeline");
        string output = Scratch();
        try
        {
            CheckpointConverter.Convert(Path.Combine(root, "single_file/sd_tiny_f32.safetensors"), new CheckpointOptions { ConfigFolder = folder }, output, DType.F32);
            foreach (var (component, weights) in new[] { ("unet", "diffusion_pytorch_model.safetensors"), ("vae", "diffusion_pytorch_model.safetensors"), ("text_encoder", "model.safetensors") })
            {
                using var want = SafetensorsFile.Open(Path.Combine(folder, component, weights));
                using var got = SafetensorsFile.Open(Path.Combine(output, component, weights));
                var wantKeys = want.Tensors.Keys.Where(k => !k.EndsWith("position_ids", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
                Assert.That(got.Tensors.Keys.Order(StringComparer.Ordinal), Is.EqualTo(wantKeys), component);
                foreach (var key in wantKeys)
                {
                    Assert.That(got.Info(key).Shape, Is.EqualTo(want.Info(key).Shape), $"{component} {key}");
                    Assert.That(got.ReadFloats(key), Is.EqualTo(want.ReadFloats(key)), $"{component} {key}");
                }
            }
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [Test]
    public void ConvertedF16FolderReproducesTheF16Reference()
    {
        string root = Fixtures.RequireRoot();
        string output = Scratch();
        try
        {
            // The file's values are F16, so F16 output loses nothing.
            CheckpointConverter.Convert(Path.Combine(root, "single_file/sdxl_tiny_f16.safetensors"),
                new CheckpointOptions { ConfigFolder = Path.Combine(root, "pipelines/sdxl_tiny/pipeline") }, output, DType.F16);
            var generator = new Generator(TestDevices.Get("cpu"));
            using var model = generator.LoadModel(output);
            Reproduce(generator, model, Path.Combine(root, "single_file/sdxl_tiny_f16.reference_0"));
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [TestCase("folder")]
    [TestCase("file")]
    public void VaeOptionReplacesTheCheckpointVae(string kind)
    {
        // The folder's VAE holds the same weights as the file's, so the reference must come out unchanged.
        string root = Fixtures.RequireRoot();
        string vae = Path.Combine(root, "pipelines/sd_tiny/pipeline/vae");
        if (kind == "file") vae = Path.Combine(vae, "diffusion_pytorch_model.safetensors");
        var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(Path.Combine(root, "single_file/sd_tiny_f32.safetensors"),
            new CheckpointOptions { ConfigFolder = Path.Combine(root, "pipelines/sd_tiny/pipeline"), Vae = vae });
        Reproduce(generator, model, Path.Combine(root, "pipelines/sd_tiny/reference_0"));
    }

    [Test]
    public void PredictionTypeOverridesTheScheduler()
    {
        string root = Fixtures.RequireRoot();
        var generator = new Generator(TestDevices.Get("cpu"));
        using var model = generator.LoadModel(Path.Combine(root, "single_file/sd_tiny_f32.safetensors"),
            new CheckpointOptions { ConfigFolder = Path.Combine(root, "pipelines/sd_tiny/pipeline"), PredictionType = "v_prediction" });
        Assert.That(model.TrainingSchedule.PredictionType, Is.EqualTo("v_prediction"));
    }

    private static string Scratch() => Path.Combine(Path.GetTempPath(), $"engine-convert-{Guid.NewGuid():N}");

    /// <summary>Runs a reference call on <paramref name="model"/> and compares latents and image within 1e-3.</summary>
    internal static void Reproduce(Generator generator, LoadedDenoiser model, string reference)
    {
        var json = JsonDocument.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference + ".json"))).RootElement;
        using var tensors = SafetensorsFile.Open(reference + ".safetensors");
        var request = PipelineReference.Request(json, tensors);
        var result = generator.Generate(model, request);
        PipelineReference.AssertReproduced(result, tensors, Path.GetFileName(reference));
    }
}
