using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// LoRA through the CLI: <c>generate --lora FILE:SCALE</c> (two adapters) reproducing a diffusers reference, its
/// sidecar with each file's SHA-256 regenerating the same pixels (and refusing a changed file), job lines whose
/// LoRA scales differ sharing one model load, and the errors for a missing file and an unsupported layout.
/// </summary>
public class LoraCommandTests
{
    private static string Fixture(string path) => Path.Combine(Fixtures.RequireRoot(), path);

    private static string SdTiny => Fixture("pipelines/sd_tiny/pipeline");

    [Test]
    public void TwoAdaptersReproduceTheReferenceAndTheSidecarRegeneratesIt()
    {
        string reference = Fixture("lora/reference_6");
        var json = JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference + ".json")))!;
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
        // A copy of one adapter, so it can be changed afterwards.
        File.Copy(Fixture("lora/sd_tiny_peft_r4.safetensors"), scratch["peft.safetensors"]);
        var kwargs = json["call_kwargs"]!;
        var args = new List<string> { "generate", "--model", SdTiny, "--lora", Fixture("lora/sd_tiny_kohya_r8.safetensors") + ":0.8", "--lora", scratch["peft.safetensors"] + ":0.5",
            "--scheduler-config", scratch["scheduler.json"], "--steps", kwargs["num_inference_steps"]!.ToString(), "--cfg", kwargs["guidance_scale"]!.ToString() };
        foreach (var p in kwargs["prompt"]!.AsArray()) args.AddRange(["--prompt", p!.GetValue<string>()]);
        foreach (var p in kwargs["negative_prompt"]!.AsArray()) args.AddRange(["--negative-prompt", p!.GetValue<string>()]);
        args.AddRange(["--init-noise", scratch["noise.safetensors"], "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]]);
        var r = Cli.Run([.. args]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using (var o = SafetensorsFile.Open(scratch["out.safetensors"]))
            Assert.That(Fixtures.RelativeError(o.ReadFloats("samples"), latents), Is.LessThanOrEqualTo(1e-3));

        string sidecar = Directory.GetFiles(scratch["png"], "*_i0000.json").Single();
        var loras = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement.GetProperty("loras");
        Assert.That(loras.GetArrayLength(), Is.EqualTo(2));
        Assert.That(loras[1].GetProperty("scale").GetDouble(), Is.EqualTo(0.5));
        Assert.That(loras[1].GetProperty("sha256").GetString(), Is.EqualTo(Engine.Models.Adapters.LoraFile.Hash(scratch["peft.safetensors"])));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));

        File.Copy(Fixture("lora/sd_tiny_kohya_r8.safetensors"), scratch["peft.safetensors"], overwrite: true);
        var changed = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["changed"], "--device", "cpu");
        Assert.That(changed.Code, Is.EqualTo(1), changed.ToString());
        Assert.That(changed.Err, Does.Contain("peft.safetensors").And.Contain("SHA-256"));
    }

    [Test]
    public void JobLinesSwitchScalesOnOneModelAndMatchGenerate()
    {
        using var scratch = new Cli.Scratch();
        string lora = Fixture("lora/sd_tiny_kohya_r8.safetensors");
        var common = new JsonObject { ["model"] = SdTiny, ["prompt"] = "a photo of a cat", ["steps"] = 2, ["cfg"] = 1.0, ["height"] = 16, ["width"] = 16 };
        var lines = new[]
        {
            new JsonObject(common.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))) { ["seed"] = 1, ["lora"] = lora + ":1.0", ["out"] = scratch["one"] },
            new JsonObject(common.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))) { ["seed"] = 1, ["lora"] = new JsonArray(new JsonObject { ["file"] = lora, ["scale"] = 0.3 }), ["out"] = scratch["low"] },
            new JsonObject(common.Select(kv => KeyValuePair.Create(kv.Key, kv.Value?.DeepClone()))) { ["seed"] = 1, ["out"] = scratch["none"] },
        };
        File.WriteAllText(scratch["jobs.jsonl"], string.Join("\n", lines.Select(l => l.ToJsonString())) + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        byte[] Png(string dir) => File.ReadAllBytes(Path.Combine(dir, "seed000001.png"));
        Assert.That(Png(scratch["one"]), Is.Not.EqualTo(Png(scratch["low"])));
        Assert.That(Png(scratch["low"]), Is.Not.EqualTo(Png(scratch["none"])));

        // The same pixels as separate generate runs (each loading the model afresh).
        foreach (var (dir, extra) in new[] { ("low", new[] { "--lora", lora + ":0.3" }), ("none", Array.Empty<string>()) })
        {
            var g = Cli.Run(["generate", "--model", SdTiny, "--prompt", "a photo of a cat", "--steps", "2", "--cfg", "1", "--height", "16", "--width", "16",
                "--seeds", "1", "--device", "cpu", "--out", scratch["g" + dir], .. extra]);
            Assert.That(g.Code, Is.EqualTo(0), g.ToString());
            Assert.That(Png(scratch["g" + dir]), Is.EqualTo(Png(scratch[dir])), dir);
        }
    }

    [Test]
    public void MissingFilesAndUnsupportedLayoutsAreClearErrors()
    {
        using var scratch = new Cli.Scratch();
        var missing = Cli.Run("generate", "--model", SdTiny, "--prompt", "x", "--lora", scratch["absent.safetensors"] + ":0.5", "--steps", "1", "--count", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(missing.Code, Is.EqualTo(1), missing.ToString());
        Assert.That(missing.Err, Does.Contain("absent.safetensors").And.Contain("does not exist"));

        SafetensorsWriter.Write(scratch["loha.safetensors"], [new("lora_unet_conv_in.hada_w1_a", [2, 2], new float[4]), new("lora_unet_conv_in.hada_w1_b", [2, 2], new float[4])]);
        var loha = Cli.Run("generate", "--model", SdTiny, "--prompt", "x", "--lora", scratch["loha.safetensors"], "--steps", "1", "--count", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(loha.Code, Is.EqualTo(1), loha.ToString());
        Assert.That(loha.Err, Does.Contain("LoHa adapters are not supported").And.Contain("loha.safetensors"));
    }
}
