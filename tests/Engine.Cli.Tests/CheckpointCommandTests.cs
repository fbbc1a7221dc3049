using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// Single-file checkpoints through the CLI: <c>engine inspect --json</c> on sparse full-size files made from the
/// SD 1.5 and SDXL header manifests, <c>engine generate --model FILE --config DIR</c> reproducing a reference with its
/// sidecar round trip, <c>engine convert</c>, and the errors for misused options.
/// </summary>
public class CheckpointCommandTests
{
    private static string Root => Fixtures.RequireRoot();

    [TestCase("manifest_sd15")]
    [TestCase("manifest_sdxl_base_1_0")]
    public void InspectJsonOnSparseManifestFilePrintsClassAndConfigs(string name)
    {
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "single_file", name + ".json"))).RootElement;
        using var scratch = new Cli.Scratch();
        WriteSparse(manifest, scratch["model.safetensors"]);
        var r = Cli.Run("inspect", "--json", scratch["model.safetensors"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        var json = JsonNode.Parse(r.Out)!.AsObject();
        Assert.That(json["pipeline_class"]!.GetValue<string>(), Is.EqualTo(manifest.GetProperty("diffusers_pipeline_class").GetString()));
        var configs = manifest.GetProperty("diffusers_configs");
        foreach (var component in new[] { "unet", "vae", "scheduler" })
            foreach (var field in configs.GetProperty(component).EnumerateObject().Where(f => f.Name != "class_name"))
                Assert.That(JsonNode.DeepEquals(json[component]![field.Name], JsonNode.Parse(field.Value.GetRawText())), Is.True, $"{component}.{field.Name}");
        Assert.That(json["scheduler"]!["_class_name"]!.GetValue<string>(), Is.EqualTo(configs.GetProperty("scheduler").GetProperty("class_name").GetString()));
        foreach (var text in new[] { "text_encoder", "text_encoder_2" })
        {
            Assert.That(json.ContainsKey(text), Is.EqualTo(configs.TryGetProperty(text, out var want)), text);
            if (!json.ContainsKey(text)) continue;
            foreach (var field in new[] { "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "projection_dim", "hidden_act", "vocab_size" })
                Assert.That(JsonNode.DeepEquals(json[text]![field], JsonNode.Parse(want.GetProperty(field).GetRawText())), Is.True, $"{text}.{field}");
            Assert.That(json[text]!["architectures"]![0]!.GetValue<string>(), Is.EqualTo(want.GetProperty("class_name").GetString()));
        }
    }

    [Test]
    public void GenerateFromCheckpointWithConfigReproducesReferenceAndSidecar()
    {
        string reference = Path.Combine(Root, "single_file/sdxl_tiny_f16.reference_0");
        var json = JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference + ".json")))!;
        var kw = json["call_kwargs"]!;
        using var scratch = new Cli.Scratch();
        var config = json["scheduler"]!["config"]!.AsObject();
        config["_class_name"] = json["scheduler"]!["class"]!.GetValue<string>();
        File.WriteAllText(scratch["scheduler.json"], config.ToJsonString());
        float[] latents;
        using (var f = SafetensorsFile.Open(reference + ".safetensors"))
        {
            SafetensorsWriter.Write(scratch["noise.safetensors"], [new SafetensorsWriter.Entry("x_T", [.. f.Info("x_T").Shape], f.ReadFloats("x_T"))]);
            latents = f.ReadFloats("latents_final");
        }
        var args = new List<string> { "generate", "--model", Path.Combine(Root, "single_file/sdxl_tiny_f16.safetensors"), "--config", Path.Combine(Root, "pipelines/sdxl_tiny/pipeline"),
            "--scheduler-config", scratch["scheduler.json"], "--steps", kw["num_inference_steps"]!.ToString(), "--cfg", kw["guidance_scale"]!.ToJsonString() };
        foreach (var p in kw["prompt"] is JsonArray a ? a.Select(x => x!.GetValue<string>()) : [kw["prompt"]!.GetValue<string>()]) args.AddRange(["--prompt", p]);
        if (kw["negative_prompt"] is JsonNode neg) foreach (var p in neg is JsonArray na ? na.Select(x => x!.GetValue<string>()) : [neg.GetValue<string>()]) args.AddRange(["--negative-prompt", p]);
        foreach (var (k, flag) in new[] { ("height", "--height"), ("width", "--width") }) if (kw[k] is JsonValue v) args.AddRange([flag, v.ToJsonString()]);
        args.AddRange(["--init-noise", scratch["noise.safetensors"], "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]]);
        var r = Cli.Run([.. args]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using (var o = SafetensorsFile.Open(scratch["out.safetensors"]))
            Assert.That(Fixtures.RelativeError(o.ReadFloats("samples"), latents), Is.LessThanOrEqualTo(1e-3));

        string sidecar = Directory.GetFiles(scratch["png"], "*.json").Order().First();
        var recorded = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement;
        Assert.That(recorded.GetProperty("model").GetString(), Does.EndWith("sdxl_tiny_f16.safetensors"));
        Assert.That(recorded.GetProperty("config").GetString(), Does.EndWith(Path.Combine("sdxl_tiny", "pipeline")));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));
    }

    [Test]
    public void ConvertWritesAPipelineFolderThatInspectReads()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("convert", Path.Combine(Root, "single_file/sd_tiny_f32.safetensors"), "--config", Path.Combine(Root, "pipelines/sd_tiny/pipeline"), "--out", scratch["pipe"], "--weights", "f16");
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        var index = JsonNode.Parse(File.ReadAllText(scratch["pipe/model_index.json"]))!;
        Assert.That(index["_class_name"]!.GetValue<string>(), Is.EqualTo("StableDiffusionPipeline"));
        using (var unet = SafetensorsFile.Open(scratch["pipe/unet/diffusion_pytorch_model.safetensors"]))
            Assert.That(unet.Tensors.Values.Select(t => t.Type.ToString()).Distinct(), Is.EqualTo(new[] { "F16" }));
        var inspect = Cli.Run("inspect", scratch["pipe"]);
        Assert.That(inspect.Code, Is.EqualTo(0), inspect.ToString());
        var again = Cli.Run("convert", Path.Combine(Root, "single_file/sd_tiny_f32.safetensors"), "--out", scratch["pipe"]);
        Assert.That(again.Code, Is.EqualTo(1));
        Assert.That(again.Err, Does.Contain("model_index.json"));
    }

    [Test]
    public void MisusedCheckpointOptionsAreNamed()
    {
        string file = Path.Combine(Root, "single_file/sd_tiny_f32.safetensors");
        var badType = Cli.Run("generate", "--model", file, "--prediction-type", "x0", "--steps", "1", "--device", "cpu");
        Assert.That(badType.Code, Is.EqualTo(2), badType.ToString());
        Assert.That(badType.Err, Does.Contain("--prediction-type"));
        var folder = Cli.Run("generate", "--model", Path.Combine(Root, "pipelines/sd_tiny/pipeline"), "--vae", Path.Combine(Root, "pipelines/sd_tiny/pipeline/vae"), "--steps", "1", "--device", "cpu", "--prompt", "x");
        Assert.That(folder.Code, Is.EqualTo(1), folder.ToString());
        Assert.That(folder.Err, Does.Contain("single-file checkpoints only"));
        var wrongClass = Cli.Run("generate", "--model", file, "--config", Path.Combine(Root, "pipelines/sdxl_tiny/pipeline"), "--steps", "1", "--device", "cpu", "--prompt", "x");
        Assert.That(wrongClass.Code, Is.EqualTo(1), wrongClass.ToString());
        Assert.That(wrongClass.Err, Does.Contain("model_index.json").And.Contain("StableDiffusionXLPipeline"));
        var notCheckpoint = Cli.Run("inspect", "--json", Path.Combine(Root, "pipelines/sd_tiny/pipeline/unet/diffusion_pytorch_model.safetensors"));
        Assert.That(notCheckpoint.Code, Is.EqualTo(1));
        Assert.That(notCheckpoint.Err, Does.Contain("model.diffusion_model."));
    }

    /// <summary>The manifest's header, then the file length set without data (a sparse file).</summary>
    private static void WriteSparse(JsonElement manifest, string path)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var t in manifest.GetProperty("tensors").EnumerateObject())
        {
            var shape = t.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            string dtype = t.Value.GetProperty("dtype").GetString()!;
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * (dtype == "I64" ? 8 : dtype == "F32" ? 4 : 2);
            header[t.Name] = new JsonObject { ["dtype"] = dtype, ["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)]), ["data_offsets"] = new JsonArray(offset, offset + bytes) };
            offset += bytes;
        }
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (text.Length + 7) / 8 * 8;
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(BitConverter.GetBytes((ulong)padded));
        f.Write(text);
        for (int i = text.Length; i < padded; i++) f.WriteByte((byte)' ');
        f.SetLength(8 + padded + offset);
    }
}
