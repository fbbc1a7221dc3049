using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Models.Checkpoints;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Models.Tests.Checkpoints;

/// <summary>
/// Detection and config inference from the header alone, on sparse full-size files made from the SD 1.5 and
/// SDXL manifests: the pipeline class and every UNet, VAE and scheduler field of the manifest's diffusers configs,
/// the text encoders' architecture fields, and a strict dry-run binding of every component built from the inferred
/// configs onto the file's mapped tensors.
/// </summary>
[TestFixture]
public sealed class CheckpointInspectorTests
{
    private static readonly string[] TextFields = ["vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "max_position_embeddings", "hidden_act", "layer_norm_eps", "projection_dim"];

    [TestCase("manifest_sd15", CheckpointKind.StableDiffusion1)]
    [TestCase("manifest_sdxl_base_1_0", CheckpointKind.StableDiffusionXL)]
    public void SparseFileFromManifestInfersTheDiffusersConfigs(string name, CheckpointKind kind)
    {
        var manifest = Fixtures.Json(Path.Combine("single_file", name + ".json"));
        var configs = manifest.GetProperty("diffusers_configs");
        string path = Path.Combine(Path.GetTempPath(), $"engine-sparse-{name}-{Guid.NewGuid():N}.safetensors");
        try
        {
            SparseCheckpoint.Write(manifest, path);
            using var file = SafetensorsFile.Open(path);
            var inferred = CheckpointInspector.Inspect(file);
            Assert.That(inferred.Kind, Is.EqualTo(kind));
            Assert.That(inferred.PipelineClass, Is.EqualTo(manifest.GetProperty("what_a_loader_must_infer").GetProperty("pipeline_class").GetString()));
            Assert.That(inferred.PredictionType, Is.EqualTo(manifest.GetProperty("what_a_loader_must_infer").GetProperty("prediction_type").GetString()));
            var json = inferred.ToJson();
            ExpectFields(configs.GetProperty("unet"), json["unet"]!, null);
            ExpectFields(configs.GetProperty("vae"), json["vae"]!, null);
            ExpectFields(configs.GetProperty("scheduler"), json["scheduler"]!, null);
            ExpectFields(configs.GetProperty("text_encoder"), json["text_encoder"]!, TextFields);
            Assert.That(json.ContainsKey("text_encoder_2"), Is.EqualTo(configs.TryGetProperty("text_encoder_2", out var t2)));
            if (json.ContainsKey("text_encoder_2")) ExpectFields(t2, json["text_encoder_2"]!, TextFields);

            // Every component of the inferred configs binds the file's tensors strictly (names and shapes).
            var layers = inferred.UNet["layers_per_block"]!.GetValue<int>();
            using (var unet = ModelLoader.Build(ModelConfig.Parse(inferred.UNet.ToJsonString(), "unet")))
                unet.CheckBinding(CheckpointComponents.UNet(file, layers));
            using (var vae = ModelLoader.Build(ModelConfig.Parse(inferred.Vae.ToJsonString(), "vae")))
                vae.CheckBinding(CheckpointComponents.Vae(file, inferred.Vae["block_out_channels"]!.AsArray().Count));
            foreach (var (source, config) in CheckpointPipelineSources(file, inferred))
                using (var text = new ClipTextModel(ModelConfig.Parse(config.ToJsonString(), source.Component)))
                    text.CheckBinding(source);
        }
        finally { File.Delete(path); }
    }

    private static IEnumerable<(CheckpointWeightSource, JsonObject)> CheckpointPipelineSources(SafetensorsFile file, CheckpointConfigs c)
    {
        if (c.Kind == CheckpointKind.StableDiffusion1) { yield return (CheckpointComponents.HuggingFaceClip(file, CheckpointInspector.Sd1TextPrefix, "text_encoder"), c.TextEncoder); yield break; }
        yield return (CheckpointComponents.HuggingFaceClip(file, CheckpointInspector.XlTextPrefix, "text_encoder"), c.TextEncoder);
        yield return (CheckpointComponents.OpenClip(file, CheckpointInspector.XlText2Prefix, "text_encoder_2", c.TextEncoder2!["num_hidden_layers"]!.GetValue<int>(), withProjection: true), c.TextEncoder2!);
    }

    /// <summary>Every field of <paramref name="expected"/> (or only <paramref name="only"/>) must appear in <paramref name="actual"/> with the same JSON value.</summary>
    private static void ExpectFields(JsonElement expected, JsonNode actual, string[]? only)
    {
        foreach (var p in expected.EnumerateObject())
        {
            if (only is not null && !only.Contains(p.Name)) continue;
            string field = p.Name == "class_name" ? (actual["_class_name"] is not null ? "_class_name" : "architectures") : p.Name;
            Assert.That(actual.AsObject().TryGetPropertyValue(field, out var got), Is.True, $"field {p.Name} missing");
            if (field == "architectures") got = got?[0];
            Assert.That(JsonNode.DeepEquals(got, JsonNode.Parse(p.Value.GetRawText())), Is.True, $"field {p.Name}: inferred {got?.ToJsonString()}, expected {p.Value.GetRawText()}");
        }
    }
}
