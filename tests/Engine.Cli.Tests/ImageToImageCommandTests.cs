using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Imaging;

namespace Engine.Cli.Tests;

/// <summary>
/// img2img through the CLI: the sd_tiny img2img reference from --init-image / --strength / --init-noise (x_T and
/// encode_noise), sidecars and job lines that carry the init image (path and SHA-256), strength and VAE tiling
/// and regenerate the same pixels, PNG init images of another size, and the errors.
/// </summary>
public class ImageToImageCommandTests
{
    private static string Pipeline => Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");

    [Test]
    public void GenerateReproducesTheImg2ImgReferenceAndItsSidecar()
    {
        string reference = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/reference_2");
        var json = JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference + ".json")))!;
        using var scratch = new Cli.Scratch();
        var config = json["scheduler"]!["config"]!.AsObject();
        config["_class_name"] = json["scheduler"]!["class"]!.GetValue<string>();
        File.WriteAllText(scratch["scheduler.json"], config.ToJsonString());
        float[] latents;
        using (var f = SafetensorsFile.Open(reference + ".safetensors"))
        {
            SafetensorsWriter.Write(scratch["noise.safetensors"], [
                new SafetensorsWriter.Entry("x_T", [.. f.Info("random_draw_1").Shape], f.ReadFloats("random_draw_1")),
                new SafetensorsWriter.Entry("encode_noise", [.. f.Info("random_draw_0").Shape], f.ReadFloats("random_draw_0"))]);
            SafetensorsWriter.Write(scratch["init.safetensors"], [new SafetensorsWriter.Entry("image", [.. f.Info("init_image").Shape], f.ReadFloats("init_image"))]);
            latents = f.ReadFloats("latents_final");
        }
        var r = Cli.Run("generate", "--model", Pipeline, "--scheduler-config", scratch["scheduler.json"], "--steps", "8", "--cfg", "5",
            "--prompt", "a watercolor landscape", "--prompt", "a pixel art castle", "--negative-prompt", "ugly", "--negative-prompt", "text, watermark",
            "--init-image", scratch["init.safetensors"], "--strength", "0.6",
            "--init-noise", scratch["noise.safetensors"], "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using (var o = SafetensorsFile.Open(scratch["out.safetensors"]))
        {
            Assert.That(o.Info("image").Shape, Is.EqualTo(new[] { 2, 3, 24, 16 }), "size from the init image");
            Assert.That(Fixtures.RelativeError(o.ReadFloats("samples"), latents), Is.LessThanOrEqualTo(2e-5));
        }

        string sidecar = Directory.GetFiles(scratch["png"], "*_i0001.json").Single();
        var recorded = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement;
        Assert.That(recorded.GetProperty("init_image").GetString(), Is.EqualTo(scratch["init.safetensors"]));
        Assert.That(recorded.GetProperty("init_image_sha256").GetString(), Has.Length.EqualTo(64));
        Assert.That(recorded.GetProperty("strength").GetDouble(), Is.EqualTo(0.6));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));

        // Another file under the recorded name is refused, naming both.
        float[] inverted;
        using (var f = SafetensorsFile.Open(scratch["init.safetensors"])) inverted = f.ReadFloats("image").Select(v => 1 - v).ToArray();
        SafetensorsWriter.Write(scratch["init.safetensors"], [new SafetensorsWriter.Entry("image", [2, 3, 24, 16], inverted)]);
        var changed = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again2"], "--device", "cpu");
        Assert.That(changed.Code, Is.EqualTo(1));
        Assert.That(changed.Err, Does.Contain("has changed").And.Contain("init.safetensors"));
    }

    [Test]
    public void PngOfAnotherSizeAndJobLines()
    {
        using var scratch = new Cli.Scratch();
        var rng = new Random(3);
        var pixels = new byte[41 * 33 * 3];
        rng.NextBytes(pixels);
        PngCodec.Write(scratch["photo.png"], new PixelImage(33, 41, 3, pixels));

        // Without a size: the image's, rounded down to the VAE factor (2 here).
        var own = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--init-image", scratch["photo.png"], "--strength", "0.5", "--steps", "4",
            "--seed", "5", "--count", "1", "--device", "cpu", "--out", scratch["own"], "--output-tensor", scratch["own.safetensors"]);
        Assert.That(own.Code, Is.EqualTo(0), own.ToString());
        using (var o = SafetensorsFile.Open(scratch["own.safetensors"])) Assert.That(o.Info("image").Shape, Is.EqualTo(new[] { 1, 3, 40, 32 }));

        // Resized to --height/--width; a job line with the same settings and tiling on makes the same request.
        var sized = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--init-image", scratch["photo.png"], "--strength", "0.5", "--steps", "4",
            "--height", "24", "--width", "16", "--seeds", "7", "--vae-tiling", "off", "--device", "cpu", "--out", scratch["sized"]);
        Assert.That(sized.Code, Is.EqualTo(0), sized.ToString());
        var line = new JsonObject { ["model"] = Pipeline, ["prompt"] = "x", ["steps"] = 4, ["height"] = 24, ["width"] = 16, ["seed"] = 7,
            ["init_image"] = "photo.png", ["strength"] = 0.5, ["vae_tiling"] = "off" };
        File.WriteAllText(scratch["jobs.jsonl"], line.ToJsonString() + "\n");
        var batch = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["b"]);
        Assert.That(batch.Code, Is.EqualTo(0), batch.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000007.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["sized"], "seed000007.png"))));
        var sidecar = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["b"], "seed000007.json"))).RootElement;
        Assert.That(sidecar.GetProperty("vae_tiling").GetString(), Is.EqualTo("off"));
        var ownSidecar = JsonDocument.Parse(File.ReadAllText(Directory.GetFiles(scratch["own"], "*.json").Single())).RootElement;
        Assert.That(ownSidecar.GetProperty("vae_tiling").GetString(), Is.EqualTo("auto"), "a pipeline image records the mode it was made with");
        Assert.That(sidecar.GetProperty("init_image").GetString(), Is.EqualTo(scratch["photo.png"]));
        var again = Cli.Run("generate", "--from-sidecar", Path.Combine(scratch["b"], "seed000007.json"), "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], "seed000007.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000007.png"))));

        var badLine = new JsonObject { ["model"] = Pipeline, ["prompt"] = "x", ["strength"] = 0.5 };
        File.WriteAllText(scratch["bad.jsonl"], badLine.ToJsonString() + "\n");
        var bad = Cli.Run("batch", scratch["bad.jsonl"], "--device", "cpu", "--out", scratch["bad"]);
        Assert.That(bad.Code, Is.Not.EqualTo(0));
        Assert.That(bad.Err + bad.Out, Does.Contain("'strength' needs 'init_image'"));
    }

    [Test]
    public void BadImg2ImgOptionsAreClearErrors()
    {
        using var scratch = new Cli.Scratch();
        PngCodec.Write(scratch["p.png"], new PixelImage(16, 24, 3, new byte[16 * 24 * 3]));
        string[] common = ["--model", Pipeline, "--prompt", "x", "--steps", "10", "--device", "cpu", "--out", scratch["o"]];
        var noImage = Cli.Run(["generate", .. common, "--strength", "0.5"]);
        Assert.That(noImage.Code, Is.EqualTo(2), noImage.ToString());
        Assert.That(noImage.Err, Does.Contain("--strength needs --init-image"));
        foreach (var s in new[] { "0", "1.5", "abc" })
        {
            var bad = Cli.Run(["generate", .. common, "--init-image", scratch["p.png"], "--strength", s]);
            Assert.That(bad.Code, Is.EqualTo(2), bad.ToString());
            Assert.That(bad.Err, Does.Contain("--strength"));
        }
        var nothingRuns = Cli.Run(["generate", .. common, "--init-image", scratch["p.png"], "--strength", "0.05"]);
        Assert.That(nothingRuns.Code, Is.EqualTo(1));
        Assert.That(nothingRuns.Err, Does.Contain("strength 0.05 with 10 steps"));
        var missing = Cli.Run(["generate", .. common, "--init-image", scratch["none.png"]]);
        Assert.That(missing.Code, Is.EqualTo(1));
        Assert.That(missing.Err, Does.Contain("none.png"));
        var tiling = Cli.Run(["generate", .. common, "--vae-tiling", "sometimes"]);
        Assert.That(tiling.Code, Is.EqualTo(2));
        Assert.That(tiling.Err, Does.Contain("--vae-tiling"));
        string dit = Path.Combine(Fixtures.RequireRoot(), "pipelines/dit_pipe_tiny/pipeline");
        var onDit = Cli.Run("generate", "--model", dit, "--class", "1", "--count", "1", "--steps", "2", "--init-image", scratch["p.png"], "--device", "cpu", "--out", scratch["o"]);
        Assert.That(onDit.Code, Is.EqualTo(1));
        Assert.That(onDit.Err, Does.Contain("DiTPipeline").And.Contain("--init-image"));
    }
}
