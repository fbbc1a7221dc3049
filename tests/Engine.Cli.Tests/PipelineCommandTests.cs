using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// Pipeline folders through the CLI: <c>engine generate --prompt</c> reproducing a diffusers
/// StableDiffusionPipeline reference through --init-noise / --output-tensor, the sidecar round trip,
/// <c>engine tokenize</c>, and the errors for bad pipeline folders and options.
/// </summary>
public class PipelineCommandTests
{
    private static string Pipeline => Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");

    [Test]
    public void GenerateReproducesStableDiffusionReferenceAndItsSidecar()
    {
        string reference = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/reference_1");
        var json = JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(reference + ".json")))!;
        using var scratch = new Cli.Scratch();
        var config = json["scheduler"]!["config"]!.AsObject();
        config["_class_name"] = json["scheduler"]!["class"]!.GetValue<string>();
        File.WriteAllText(scratch["scheduler.json"], config.ToJsonString());
        float[] latents, image;
        using (var f = SafetensorsFile.Open(reference + ".safetensors"))
        {
            SafetensorsWriter.Write(scratch["noise.safetensors"], [new SafetensorsWriter.Entry("x_T", [.. f.Info("x_T").Shape], f.ReadFloats("x_T"))]);
            latents = f.ReadFloats("latents_final");
            image = f.ReadFloats("image");
        }
        var r = Cli.Run("generate", "--model", Pipeline, "--scheduler-config", scratch["scheduler.json"], "--steps", "6", "--cfg", "7.5",
            "--prompt", "a red bicycle leaning against a brick wall", "--prompt", "portrait of an old fisherman, dramatic light!",
            "--negative-prompt", "blurry, low quality", "--negative-prompt", "", "--height", "24", "--width", "16",
            "--init-noise", scratch["noise.safetensors"], "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using (var o = SafetensorsFile.Open(scratch["out.safetensors"]))
        {
            Assert.That(o.Info("image").Shape, Is.EqualTo(new[] { 2, 3, 24, 16 }));
            Assert.That(Fixtures.RelativeError(o.ReadFloats("samples"), latents), Is.LessThanOrEqualTo(1e-3));
            var nchw = o.ReadFloats("image");
            var nhwc = new float[nchw.Length];
            for (int i = 0; i < 2; i++)
                for (int c = 0; c < 3; c++)
                    for (int p = 0; p < 24 * 16; p++) nhwc[(i * 24 * 16 + p) * 3 + c] = nchw[(i * 3 + c) * 24 * 16 + p];
            Assert.That(Fixtures.RelativeError(nhwc, image), Is.LessThanOrEqualTo(1e-3));
        }

        string sidecar = Directory.GetFiles(scratch["png"], "*_i0001.json").Single();
        var recorded = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement;
        Assert.That(recorded.GetProperty("request_prompts")[1].GetString(), Is.EqualTo("portrait of an old fisherman, dramatic light!"));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));
    }

    [Test]
    public void JobLinesCarryPromptsAndSize()
    {
        using var scratch = new Cli.Scratch();
        var line = new JsonObject { ["model"] = Pipeline, ["prompt"] = "a photo of a cat", ["negative_prompt"] = "dark", ["steps"] = 2, ["cfg"] = 2.5, ["height"] = 24, ["width"] = 16, ["clip_skip"] = 1, ["seeds"] = "3-4" };
        File.WriteAllText(scratch["jobs.jsonl"], line.ToJsonString() + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["b"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        var sidecar = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["b"], "seed000004.json"))).RootElement;
        Assert.That(sidecar.GetProperty("request_prompts")[0].GetString(), Is.EqualTo("a photo of a cat"));
        Assert.That(sidecar.GetProperty("request_negative_prompts")[0].GetString(), Is.EqualTo("dark"));
        Assert.That((sidecar.GetProperty("height").GetInt32(), sidecar.GetProperty("width").GetInt32(), sidecar.GetProperty("clip_skip").GetInt32()), Is.EqualTo((24, 16, 1)));
        var again = Cli.Run("generate", "--from-sidecar", Path.Combine(scratch["b"], "seed000004.json"), "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], "seed000004.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000004.png"))));
    }

    [Test]
    public void SdxlJobLinesCarryMicroConditioningIntoTheSidecarAndTimingsAreReported()
    {
        using var scratch = new Cli.Scratch();
        string sdxl = Path.Combine(Fixtures.RequireRoot(), "pipelines/sdxl_tiny/pipeline");
        var line = new JsonObject
        {
            ["model"] = sdxl, ["prompt"] = "a photo of a cat", ["steps"] = 2, ["height"] = 32, ["width"] = 32, ["seed"] = 5,
            ["original_size"] = new JsonArray(64, 48), ["crop_top_left"] = new JsonArray(4, 8), ["target_size"] = new JsonArray(32, 32),
        };
        File.WriteAllText(scratch["jobs.jsonl"], line.ToJsonString() + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["b"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        var sidecar = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["b"], "seed000005.json"))).RootElement;
        int[] Pair(string name) => sidecar.GetProperty(name).EnumerateArray().Select(e => e.GetInt32()).ToArray();
        Assert.That((Pair("original_size"), Pair("crop_top_left"), Pair("target_size")), Is.EqualTo((new[] { 64, 48 }, new[] { 4, 8 }, new[] { 32, 32 })));

        // The same request from the command line gives the same pixels, and --timings names every phase.
        var g = Cli.Run("generate", "--model", sdxl, "--prompt", "a photo of a cat", "--steps", "2", "--height", "32", "--width", "32", "--seeds", "5",
            "--original-size", "64,48", "--crop-top-left", "4,8", "--target-size", "32,32", "--device", "cpu", "--out", scratch["g"], "--timings");
        Assert.That(g.Code, Is.EqualTo(0), g.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["g"], "seed000005.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000005.png"))));
        foreach (var phase in new[] { "timing: load ", "timing: text encoding ", "timing: denoising ", "(2 steps, ", "timing: VAE decode ", " s, CPU " })
            Assert.That(g.Err, Does.Contain(phase));
    }

    [Test]
    public void DiTPipelineTakesClassNamesFromItsLabels()
    {
        using var scratch = new Cli.Scratch();
        string dit = Path.Combine(Fixtures.RequireRoot(), "pipelines/dit_pipe_tiny/pipeline");
        var r = Cli.Run("generate", "--model", dit, "--class", "golden retriever", "--count", "1", "--steps", "2", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        Assert.That(File.Exists(Path.Combine(scratch["o"], "seed000000_i0000_class207.png")), r.ToString());
        var bad = Cli.Run("generate", "--model", dit, "--class", "unicorn", "--count", "1", "--steps", "2", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(bad.Code, Is.EqualTo(1), bad.ToString());
        Assert.That(bad.Err, Does.Contain("'unicorn' (--class) is not a label in").And.Contain("model_index.json"));
    }

    [Test]
    public void TokenizeJsonGivesTransformersIdsForEveryFixturePrompt()
    {
        var prompts = Fixtures.Json("tokenizer/clip_tokenizer.json").GetProperty("prompts").EnumerateArray().ToList();
        var r = Cli.Run(["tokenize", "--model", Pipeline, "--json", .. prompts.Select(p => p.GetProperty("prompt").GetString()!)]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        var lines = r.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(prompts.Count));
        for (int i = 0; i < prompts.Count; i++)
            Assert.That(JsonSerializer.Deserialize<int[]>(lines[i]), Is.EqualTo(prompts[i].GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray()), $"prompt {i}");
    }

    [Test]
    public void TokenizeWarnsAboutTruncation()
    {
        string longPrompt = string.Join(" ", Enumerable.Repeat("cat", 80));
        var r = Cli.Run("tokenize", "--model", Pipeline, longPrompt);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        Assert.That(r.Out, Does.Contain("cut here"));
        Assert.That(r.Err, Does.Contain("truncated because CLIP can only handle sequences up to 77 tokens: cat cat cat cat cat"));
    }

    [Test]
    public void BadPipelinesAndOptionsAreClearErrors()
    {
        using var scratch = new Cli.Scratch();
        Assert.That(Generate(Copy(scratch["unknown"], index => index["_class_name"] = "FancyPipeline")).Err,
            Does.Contain("model_index.json").And.Contain("'FancyPipeline' is not supported"));
        string missing = Copy(scratch["missing"], _ => { });
        Directory.Delete(Path.Combine(missing, "vae"));
        Assert.That(Generate(missing).Err, Does.Contain(Path.Combine(missing, "vae")).And.Contain("missing"));
        string narrow = Copy(scratch["narrow"], _ => { });
        string textDir = Path.Combine(narrow, "text_encoder");
        Directory.Delete(textDir);
        Directory.CreateDirectory(textDir);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Pipeline, "text_encoder/config.json")))!;
        config["hidden_size"] = 48;
        File.WriteAllText(Path.Combine(textDir, "config.json"), config.ToJsonString());
        Assert.That(Generate(narrow).Err, Does.Contain(Path.Combine(textDir, "config.json")).And.Contain("cross_attention_dim 32"));

        string sd3 = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd3_tiny_pipe/pipeline");
        Assert.That(Generate(Copy(scratch["t5"], index => index["text_encoder_3"] = new JsonArray("transformers", "T5EncoderModel"), sd3)).Err,
            Does.Contain("model_index.json").And.Contain("text_encoder_3 (T5EncoderModel) is not supported yet"));

        var skip = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--clip-skip", "4", "--steps", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(skip.Code, Is.Not.EqualTo(0));
        Assert.That(skip.Err, Does.Contain("--clip-skip").And.Contain("3 layers"));
        var noPrompt = Cli.Run("generate", "--model", Pipeline, "--steps", "1", "--count", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(noPrompt.Err, Does.Contain("needs a prompt (--prompt)"));
        var odd = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--height", "15", "--steps", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(odd.Err, Does.Contain("multiple of 2"));
        var micro = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--original-size", "64,48", "--steps", "1", "--device", "cpu", "--out", scratch["o"]);
        Assert.That(micro.Err, Does.Contain("--original-size").And.Contain("StableDiffusionPipeline"));
        var badPair = Cli.Run("generate", "--model", Pipeline, "--prompt", "x", "--crop-top-left", "4", "--steps", "1", "--out", scratch["o"]);
        Assert.That(badPair.Code, Is.EqualTo(2));
        Assert.That(badPair.Err, Does.Contain("--crop-top-left"));
    }

    private static Cli.Result Generate(string model)
    {
        var r = Cli.Run("generate", "--model", model, "--prompt", "x", "--steps", "1", "--device", "cpu", "--out", Path.Combine(model, "out"));
        Assert.That(r.Code, Is.EqualTo(1), r.ToString());
        return r;
    }

    /// <summary>The sd_tiny pipeline as links to its component folders beside an edited model_index.json.</summary>
    private static string Copy(string folder, Action<JsonObject> edit, string? source = null)
    {
        source ??= Pipeline;
        Directory.CreateDirectory(folder);
        foreach (var dir in Directory.GetDirectories(source))
            Directory.CreateSymbolicLink(Path.Combine(folder, Path.GetFileName(dir)), dir);
        var index = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "model_index.json")))!.AsObject();
        edit(index);
        File.WriteAllText(Path.Combine(folder, "model_index.json"), index.ToJsonString());
        return folder;
    }
}
