using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// ControlNet through the CLI: every SD pipeline reference of <c>fixtures/controlnet/pipelines</c> (scale, window,
/// guess mode, two nets, img2img) reproduced by <c>engine generate --controlnet ... --control-image ... --init-noise
/// --output-tensor</c> within 1e-3 (max abs error / max abs reference) of diffusers' latents and image, and farther
/// than that from the run without ControlNet; <c>engine forward</c> on a ControlNet folder; the sidecar and the job
/// line making the same pixels; and each bad input refused before sampling, naming the option or file.
/// </summary>
public sealed class ControlNetCommandTests
{
    private const double Tolerance = 1e-3;

    private static string Root => Path.Combine(Fixtures.RequireRoot(), "controlnet");

    public static IEnumerable<TestCaseData> References() =>
        Enumerable.Range(0, 5).Select(k => new TestCaseData($"sd_tiny/reference_{k}").SetName($"engine generate reproduces controlnet sd_tiny/reference_{k}"));

    [TestCaseSource(nameof(References))]
    public void GenerateReproducesReference(string reference)
    {
        using var scratch = new Cli.Scratch();
        var (args, json) = Arguments(reference, scratch);
        var r = Cli.Run([.. args, "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using var expected = SafetensorsFile.Open(Path.Combine(Root, "pipelines", reference + ".safetensors"));
        using var o = SafetensorsFile.Open(scratch["out.safetensors"]);
        var samples = o.ReadFloats("samples");
        double latentError = Fixtures.RelativeError(samples, expected.ReadFloats("latents_final"));
        double imageError = Fixtures.RelativeError(ToNhwc(o.ReadFloats("image"), o.Info("image").Shape), expected.ReadFloats("image"));
        TestContext.Out.WriteLine($"{reference}: latents {latentError:E2}, image {imageError:E2}");
        Assert.That(latentError, Is.LessThanOrEqualTo(Tolerance), "latents_final");
        Assert.That(imageError, Is.LessThanOrEqualTo(Tolerance), "image");
        // The ControlNet's effect is far above the tolerance: an engine that ignored it would land here instead.
        Assert.That(Fixtures.RelativeError(samples, expected.ReadFloats("latents_final_without_controlnet")), Is.GreaterThan(10 * Tolerance));
        Assert.That(json["controlnet_effect"]!["rel_l2"]!.GetValue<double>(), Is.GreaterThan(0.01));
    }

    [Test]
    public void GenerateReproducesSdxlReferenceWithNegativeMicroConditioning()
    {
        // check.py passes the positive SDXL sizes only; this reference also needs its negative ones.
        using var scratch = new Cli.Scratch();
        var (args, json) = Arguments("sdxl_tiny/reference_0", scratch);
        var kw = json["call_kwargs"]!;
        string Pair(string name) => string.Join(",", kw[name]!.AsArray().Select(v => v!.GetValue<int>()));
        args.AddRange(["--original-size", Pair("original_size"), "--crop-top-left", Pair("crops_coords_top_left"), "--target-size", Pair("target_size"),
            "--negative-original-size", Pair("negative_original_size"), "--negative-target-size", Pair("negative_target_size")]);
        var r = Cli.Run([.. args, "--output-tensor", scratch["out.safetensors"], "--device", "cpu", "--out", scratch["png"]]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using var expected = SafetensorsFile.Open(Path.Combine(Root, "pipelines", "sdxl_tiny/reference_0.safetensors"));
        using var o = SafetensorsFile.Open(scratch["out.safetensors"]);
        double latentError = Fixtures.RelativeError(o.ReadFloats("samples"), expected.ReadFloats("latents_final"));
        double imageError = Fixtures.RelativeError(ToNhwc(o.ReadFloats("image"), o.Info("image").Shape), expected.ReadFloats("image"));
        TestContext.Out.WriteLine($"sdxl_tiny/reference_0: latents {latentError:E2}, image {imageError:E2}");
        Assert.That(latentError, Is.LessThanOrEqualTo(Tolerance), "latents_final");
        Assert.That(imageError, Is.LessThanOrEqualTo(Tolerance), "image");

        // The sidecar records the negative sizes (crop top-left was not given) and regenerates the same pixels.
        string sidecar = Directory.GetFiles(scratch["png"], "*_i0001.json").Single();
        var recorded = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement;
        Assert.That(recorded.GetProperty("negative_original_size").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 32, 32 }));
        Assert.That(recorded.GetProperty("negative_target_size").EnumerateArray().Select(e => e.GetInt32()), Is.EqualTo(new[] { 24, 16 }));
        Assert.That(recorded.TryGetProperty("negative_crop_top_left", out _), Is.False);
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));

        // One negative size alone (diffusers would silently ignore it) and any on a non-SDXL pipeline are refused before sampling.
        var alone = Cli.Run([.. args.Take(args.IndexOf("--negative-target-size")), "--device", "cpu", "--out", scratch["alone"]]);
        Assert.That(alone.Code, Is.EqualTo(1), alone.ToString());
        Assert.That(alone.Err, Does.Contain("--negative-target-size"));
        string sd = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        var notSdxl = Cli.Run("generate", "--model", sd, "--prompt", "x", "--steps", "1", "--negative-original-size", "32,32", "--negative-target-size", "24,16",
            "--device", "cpu", "--out", scratch["sd"]);
        Assert.That(notSdxl.Code, Is.EqualTo(1), notSdxl.ToString());
        Assert.That(notSdxl.Err, Does.Contain("--negative-original-size").And.Contain("StableDiffusionPipeline"));
        foreach (var dir in new[] { scratch["alone"], scratch["sd"] })
            Assert.That(Directory.Exists(dir) ? Directory.GetFiles(dir, "*.png") : [], Is.Empty, "nothing is sampled");
    }

    [Test]
    public void SidecarAndJobLineMakeTheSamePixels()
    {
        using var scratch = new Cli.Scratch();
        var (args, _) = Arguments("sd_tiny/reference_1", scratch);
        var r = Cli.Run([.. args, "--device", "cpu", "--out", scratch["png"]]);
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        string sidecar = Directory.GetFiles(scratch["png"], "*_i0001.json").Single();
        var recorded = JsonDocument.Parse(File.ReadAllText(sidecar)).RootElement;
        var net = recorded.GetProperty("control_nets")[0];
        Assert.That((net.GetProperty("scale").GetDouble(), net.GetProperty("start").GetDouble(), net.GetProperty("end").GetDouble()), Is.EqualTo((1.0, 0.2, 0.7)));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"], "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(0), again.ToString());
        string png = Path.ChangeExtension(Path.GetFileName(sidecar), ".png");
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["png"], png))));

        // A job line with the same ControlNet, image and window gives the same pixels as the command line.
        string pipeline = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        var line = new JsonObject
        {
            ["model"] = pipeline, ["prompt"] = "a red car in the desert", ["steps"] = 4, ["cfg"] = 3.0, ["height"] = 24, ["width"] = 16, ["seed"] = 7,
            ["controlnet"] = new JsonObject { ["folder"] = Path.Combine(Root, "models/sd_tiny"), ["image"] = scratch["control0.safetensors"], ["scale"] = 0.6, ["start"] = 0.25, ["end"] = 0.75 },
        };
        File.WriteAllText(scratch["jobs.jsonl"], line.ToJsonString() + "\n");
        var b = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["b"]);
        Assert.That(b.Code, Is.EqualTo(0), b.ToString());
        var g = Cli.Run("generate", "--model", pipeline, "--prompt", "a red car in the desert", "--steps", "4", "--cfg", "3", "--height", "24", "--width", "16", "--seeds", "7",
            "--controlnet", Path.Combine(Root, "models/sd_tiny") + ":0.6", "--control-image", scratch["control0.safetensors"], "--control-start", "0.25", "--control-end", "0.75",
            "--device", "cpu", "--out", scratch["g"]);
        Assert.That(g.Code, Is.EqualTo(0), g.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["g"], "seed000007.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000007.png"))));
        var plain = Cli.Run("generate", "--model", pipeline, "--prompt", "a red car in the desert", "--steps", "4", "--cfg", "3", "--height", "24", "--width", "16", "--seeds", "7",
            "--device", "cpu", "--out", scratch["plain"]);
        Assert.That(plain.Code, Is.EqualTo(0), plain.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["plain"], "seed000007.png")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(scratch["g"], "seed000007.png"))));
    }

    [TestCase("sd_tiny")]
    [TestCase("sdxl_tiny")]
    public void ForwardWritesEveryResidual(string name)
    {
        using var scratch = new Cli.Scratch();
        var json = Fixtures.Json(Path.Combine("controlnet", "forward", name + ".json"));
        using var io = SafetensorsFile.Open(Path.Combine(Root, "forward", name + ".safetensors"));
        var inputs = new[] { "sample", "timestep", "encoder_hidden_states", "controlnet_cond", "added_text_embeds", "added_time_ids" }.Where(io.Contains)
            .Select(n => new SafetensorsWriter.Entry(n, [.. io.Info(n).Shape], io.ReadFloats(n))).ToList();
        inputs.Add(new SafetensorsWriter.Entry("conditioning_scale", [1], [(float)json.GetProperty("conditioning_scale").GetDouble()]));
        SafetensorsWriter.Write(scratch["in.safetensors"], inputs);
        var r = Cli.Run("forward", "--model", Path.Combine(Root, "models", name), "--inputs", scratch["in.safetensors"], "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(0), r.ToString());
        using var o = SafetensorsFile.Open(scratch["out.safetensors"]);
        int n = json.GetProperty("n_down_residuals").GetInt32();
        Assert.That(o.Tensors.Keys, Is.EquivalentTo(Enumerable.Range(0, n).Select(j => $"down_block_res_samples.{j}").Append("mid_block_res_sample")));
        foreach (var key in o.Tensors.Keys)
        {
            Assert.That(o.Info(key).Shape, Is.EqualTo(io.Info(key).Shape), key);
            Assert.That(Fixtures.RelativeError(o.ReadFloats(key), io.ReadFloats(key)), Is.LessThanOrEqualTo(1e-4), key);
        }
    }

    [Test]
    public void TimingsCountControlNetWeightsAsWeights()
    {
        // The nets load after the 'load' line; --timings must not report their weights as text-encoding activations.
        using var scratch = new Cli.Scratch();
        string pipeline = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        SafetensorsWriter.Write(scratch["rgb.safetensors"], [new SafetensorsWriter.Entry("image", [1, 3, 24, 16], new float[3 * 24 * 16])]);
        string TextEncodingActivations(string output, params string[] extra)
        {
            var r = Cli.Run(["generate", "--model", pipeline, "--prompt", "a cat", "--steps", "1", "--height", "24", "--width", "16", "--seeds", "1",
                "--device", "cpu", "--timings", "--out", scratch[output], .. extra]);
            Assert.That(r.Code, Is.EqualTo(0), r.ToString());
            string line = r.Err.Split('\n').Single(l => l.StartsWith("timing: text encoding", StringComparison.Ordinal));
            if (extra.Length > 0) Assert.That(line, Does.Contain("; ControlNet weights "));
            else Assert.That(line, Does.Not.Contain("ControlNet"));
            return line[line.IndexOf("activations peak", StringComparison.Ordinal)..line.IndexOf(", held", StringComparison.Ordinal)];
        }
        string plain = TextEncodingActivations("plain");
        string controlled = TextEncodingActivations("cn", "--controlnet", Path.Combine(Root, "models/sd_tiny"), "--control-image", scratch["rgb.safetensors"]);
        Assert.That(controlled, Is.EqualTo(plain));
    }

    [Test]
    public void BadControlNetInputIsAClearErrorBeforeSampling()
    {
        using var scratch = new Cli.Scratch();
        string pipeline = Path.Combine(Fixtures.RequireRoot(), "pipelines/sd_tiny/pipeline");
        string net = Path.Combine(Root, "models/sd_tiny"), other = Path.Combine(Root, "models/sd_tiny_b"), sdxl = Path.Combine(Root, "models/sdxl_tiny");
        SafetensorsWriter.Write(scratch["rgb.safetensors"], [new SafetensorsWriter.Entry("image", [1, 3, 24, 16], new float[3 * 24 * 16])]);
        SafetensorsWriter.Write(scratch["gray.safetensors"], [new SafetensorsWriter.Entry("image", [1, 1, 24, 16], new float[24 * 16])]);
        Cli.Result Generate(params string[] extra) => Cli.Run(["generate", "--model", pipeline, "--prompt", "a cat", "--steps", "2", "--height", "24", "--width", "16",
            "--seeds", "1", "--device", "cpu", "--out", scratch["out"], .. extra]);
        var cases = new (string[] Args, int Code, string[] Message)[]
        {
            (["--controlnet", net, "--controlnet", other, "--control-image", scratch["rgb.safetensors"]], ExitCodes.Usage, ["2 ControlNet(s) (--controlnet) but 1 control image(s) (--control-image)"]),
            (["--controlnet", net, "--control-image", scratch["rgb.safetensors"], "--control-start", "0.8", "--control-end", "0.3"], ExitCodes.Usage, ["--control-start 0.8 must be below --control-end 0.3"]),
            (["--controlnet", net, "--control-image", scratch["rgb.safetensors"], "--control-end", "1.5"], ExitCodes.Usage, ["--control-end"]),
            (["--controlnet", net, "--controlnet", other, "--control-image", scratch["rgb.safetensors"], "--control-image", scratch["rgb.safetensors"],
              "--control-start", "0.1", "--control-start", "0.2", "--control-start", "0.3"], ExitCodes.Usage, ["3 values of --control-start for 2 ControlNets"]),
            (["--control-image", scratch["rgb.safetensors"]], ExitCodes.Usage, ["--control-image needs --controlnet"]),
            (["--guess-mode"], ExitCodes.Usage, ["--guess-mode needs --controlnet"]),
            (["--controlnet", net, "--control-image", scratch["missing.png"]], ExitCodes.Failure, ["missing.png", "--control-image"]),
            (["--controlnet", net, "--control-image", scratch["gray.safetensors"]], ExitCodes.Failure, ["gray.safetensors", "has 1 channels", "conditioning_channels = 3"]),
            (["--controlnet", sdxl, "--control-image", scratch["rgb.safetensors"]], ExitCodes.Failure, ["sdxl_tiny", "--controlnet", "does not fit the UNet"]),
            (["--controlnet", scratch["nowhere"], "--control-image", scratch["rgb.safetensors"]], ExitCodes.Failure, ["nowhere", "--controlnet"]),
        };
        foreach (var (args, code, message) in cases)
        {
            var r = Generate(args);
            Assert.That(r.Code, Is.EqualTo(code), $"{string.Join(" ", args)}\n{r}");
            foreach (var m in message) Assert.That(r.Err, Does.Contain(m), string.Join(" ", args));
            Assert.That(Directory.Exists(scratch["out"]) ? Directory.GetFiles(scratch["out"], "*.png") : [], Is.Empty, "nothing is sampled");
        }
    }

    /// <summary>The command line check.py builds from a reference JSON (paths relative to it), with its control images and noise written to <paramref name="scratch"/>.</summary>
    internal static (List<string> Args, JsonNode Json) Arguments(string reference, Cli.Scratch scratch)
    {
        string jsonPath = Path.Combine(Root, "pipelines", reference + ".json");
        string dir = Path.GetDirectoryName(jsonPath)!;
        var json = JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(jsonPath)))!;
        var kw = json["call_kwargs"]!;
        var config = json["scheduler"]!["config"]!.AsObject();
        config["_class_name"] = json["scheduler"]!["class"]!.GetValue<string>();
        File.WriteAllText(scratch["scheduler.json"], config.ToJsonString());
        var args = new List<string> { "generate", "--model", Path.GetFullPath(Path.Combine(dir, json["pipeline_folder"]!.GetValue<string>())),
            "--scheduler-config", scratch["scheduler.json"], "--steps", kw["num_inference_steps"]!.ToString(), "--cfg", kw["guidance_scale"]!.ToString() };
        var extra = json["cli_extra_args"]!.AsArray().Select(e => e!.GetValue<string>()).ToList();
        for (int i = 0; i < extra.Count; i++)
            args.Add(i > 0 && extra[i - 1] == "--controlnet" ? Path.GetFullPath(Path.Combine(dir, extra[i])) : extra[i]);
        var prompts = kw["prompt"]!.AsArray().Select(p => p!.GetValue<string>()).ToList();
        foreach (var p in prompts) args.AddRange(["--prompt", p]);
        foreach (var p in kw["negative_prompt"]?.AsArray() ?? []) args.AddRange(["--negative-prompt", p!.GetValue<string>()]);
        args.AddRange(["--count", prompts.Count.ToString(), "--height", kw["height"]!.ToString(), "--width", kw["width"]!.ToString()]);
        using var t = SafetensorsFile.Open(Path.Combine(Root, "pipelines", reference + ".safetensors"));
        SafetensorsWriter.Entry Entry(string name, string tensor) => new(name, [.. t.Info(tensor).Shape], t.ReadFloats(tensor));
        var noise = new List<SafetensorsWriter.Entry>();
        if (t.Contains("x_T")) noise.Add(Entry("x_T", "x_T"));
        if (kw["strength"] is { } strength)
        {
            SafetensorsWriter.Write(scratch["init.safetensors"], [Entry("image", "init_image")]);
            args.AddRange(["--strength", strength.ToString(), "--init-image", scratch["init.safetensors"]]);
            foreach (var draw in json["random_draws"]!.AsArray())
            {
                string purpose = draw!["purpose"]!.GetValue<string>(), name = draw["name"]!.GetValue<string>();
                if (purpose.StartsWith("VAE posterior", StringComparison.Ordinal)) noise.Add(Entry("encode_noise", name));
                else if (purpose.StartsWith("noise for scheduler.add_noise", StringComparison.Ordinal)) noise.Add(Entry("x_T", name));
            }
        }
        var images = json["cli_control_images"]!.AsArray().Select(c => c!.GetValue<string>()).ToList();
        for (int i = 0; i < images.Count; i++)
        {
            SafetensorsWriter.Write(scratch[$"control{i}.safetensors"], [Entry("image", images[i])]);
            args.AddRange(["--control-image", scratch[$"control{i}.safetensors"]]);
        }
        SafetensorsWriter.Write(scratch["noise.safetensors"], noise);
        args.AddRange(["--init-noise", scratch["noise.safetensors"]]);
        return (args, json);
    }

    private static float[] ToNhwc(float[] nchw, IReadOnlyList<int> shape)
    {
        int n = shape[0], c = shape[1], plane = shape[2] * shape[3];
        var nhwc = new float[nchw.Length];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++) nhwc[(i * plane + p) * c + ch] = nchw[(i * c + ch) * plane + p];
        return nhwc;
    }
}
