using System.Text.Json;
using System.Text.Json.Nodes;

namespace Engine.RandomPipeline;

/// <summary>
/// Builds a full-size Stable Diffusion 1.5 pipeline folder with random weights: the UNet and VAE from the key
/// manifests (their configs and every key with its shape), CLIP ViT-L/14's text encoder from its well-known
/// configuration, the tokenizer copied from a folder holding the real CLIP vocabulary, and SD 1.5's scheduler
/// configuration. Nothing is learned, so the images are noise; the folder measures load time, speed and memory
/// at real sizes (docs/PERFORMANCE.md). With <c>--controlnet</c> it also (or only) writes a ControlNet folder for that
/// UNet, shaped as the public SD 1.5 ControlNets are.
/// </summary>
public static class Program
{
    private const string Usage =
        "usage: random-pipeline --manifests DIR [--tokenizer DIR --out DIR] [--controlnet DIR] [--dtype f16|f32] [--seed N]\n" +
        "  --manifests  folder with sd15_unet_keys.json and sd15_vae_keys.json (fixtures/manifests)\n" +
        "  --tokenizer  a CLIP tokenizer folder (vocab.json, merges.txt, ...) to copy, e.g. fixtures/pipelines/sd_tiny/pipeline/tokenizer\n" +
        "  --out        the pipeline folder to write (created; existing component files are replaced)\n" +
        "  --controlnet a ControlNetModel folder to write for the manifest's UNet (config.json + diffusion_pytorch_model.safetensors)\n" +
        "  at least one of --out and --controlnet";

    public static int Main(string[] args)
    {
        try
        {
            var options = Parse(args);
            string manifests = Require(options, "manifests");
            string? output = options.GetValueOrDefault("out"), controlnet = options.GetValueOrDefault("controlnet");
            if (output is null && controlnet is null) throw new ArgumentException("--out or --controlnet is required");
            string dtype = (options.GetValueOrDefault("dtype") ?? "f16").ToUpperInvariant();
            ulong seed = ulong.Parse(options.GetValueOrDefault("seed") ?? "0");
            if (output is not null) Build(manifests, Require(options, "tokenizer"), output, dtype, seed);
            if (controlnet is not null) BuildControlNet(Path.Combine(manifests, "sd15_unet_keys.json"), controlnet, dtype, seed + 3);
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or IOException or JsonException or FormatException)
        {
            Console.Error.WriteLine($"random-pipeline: {e.Message}");
            Console.Error.WriteLine(Usage);
            return 2;
        }
    }

    private static void Build(string manifests, string tokenizer, string output, string dtype, ulong seed)
    {
        foreach (var file in new[] { "vocab.json", "merges.txt" })
            if (!File.Exists(Path.Combine(tokenizer, file))) throw new FileNotFoundException($"{Path.Combine(tokenizer, file)} is missing (--tokenizer)");
        Directory.CreateDirectory(output);
        WriteJson(Path.Combine(output, "model_index.json"), ModelIndex());

        long total = 0;
        total += FromManifest(Path.Combine(manifests, "sd15_unet_keys.json"), Path.Combine(output, "unet"), "UNet2DConditionModel", dtype, seed);
        total += FromManifest(Path.Combine(manifests, "sd15_vae_keys.json"), Path.Combine(output, "vae"), "AutoencoderKL", dtype, seed + 1);

        string text = Path.Combine(output, "text_encoder");
        Directory.CreateDirectory(text);
        WriteJson(Path.Combine(text, "config.json"), ClipL.Config());
        long clip = RandomSafetensors.Write(Path.Combine(text, "model.safetensors"), ClipL.Tensors(), dtype, seed + 2);
        Console.WriteLine($"text_encoder: CLIPTextModel, {clip:N0} parameters");
        total += clip;

        string tok = Path.Combine(output, "tokenizer");
        Directory.CreateDirectory(tok);
        foreach (var file in Directory.GetFiles(tokenizer)) File.Copy(file, Path.Combine(tok, Path.GetFileName(file)), overwrite: true);

        string scheduler = Path.Combine(output, "scheduler");
        Directory.CreateDirectory(scheduler);
        WriteJson(Path.Combine(scheduler, "scheduler_config.json"), SchedulerConfig());
        Console.WriteLine($"{output}: {total:N0} parameters stored as {dtype}");
    }

    /// <summary>Writes a component from a key manifest: config.json from its config, every key with random values.</summary>
    private static long FromManifest(string manifestPath, string folder, string className, string dtype, ulong seed)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(manifestPath)) ?? throw new JsonException($"{manifestPath} is empty");
        if ((string?)manifest["class"] != className) throw new ArgumentException($"{manifestPath}: class is '{manifest["class"]}', expected {className}");
        var config = manifest["config"]!.AsObject().DeepClone().AsObject();
        config.Remove("_use_default_values");
        var ordered = new JsonObject { ["_class_name"] = className, ["_diffusers_version"] = (string?)manifest["diffusers_version"] ?? "0.31.0" };
        foreach (var (key, value) in config) ordered[key] = value?.DeepClone();
        Directory.CreateDirectory(folder);
        WriteJson(Path.Combine(folder, "config.json"), ordered);
        var tensors = manifest["keys"]!.AsArray()
            .Select(k => new RandomTensor((string)k!["key"]!, k["shape"]!.AsArray().Select(d => (int)d!).ToArray(), Fill((string)k["key"]!, k["shape"]!.AsArray().Count)))
            .ToList();
        long parameters = RandomSafetensors.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), tensors, dtype, seed);
        long expected = (long?)manifest["num_parameters"] ?? parameters;
        if (parameters != expected) throw new InvalidDataException($"{manifestPath}: wrote {parameters} parameters but num_parameters is {expected}");
        Console.WriteLine($"{Path.GetFileName(folder)}: {className}, {parameters:N0} parameters");
        return parameters;
    }

    /// <summary>Writes a ControlNet folder for the UNet of <paramref name="unetManifest"/>.</summary>
    private static void BuildControlNet(string unetManifest, string folder, string dtype, ulong seed)
    {
        var manifest = JsonNode.Parse(File.ReadAllText(unetManifest)) ?? throw new JsonException($"{unetManifest} is empty");
        if ((string?)manifest["class"] != "UNet2DConditionModel")
            throw new ArgumentException($"{unetManifest}: class is '{manifest["class"]}', expected UNet2DConditionModel");
        var unetConfig = manifest["config"]!.AsObject();
        Directory.CreateDirectory(folder);
        WriteJson(Path.Combine(folder, "config.json"), ControlNet.Config(unetConfig, (string?)manifest["diffusers_version"] ?? "0.31.0"));
        var tensors = ControlNet.Tensors(manifest["keys"]!.AsArray(), unetConfig);
        long parameters = RandomSafetensors.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), tensors, dtype, seed);
        Console.WriteLine($"{folder}: ControlNetModel, {tensors.Count} tensors, {parameters:N0} parameters stored as {dtype}");
    }

    /// <summary>Norm scales are ones, other vectors small biases, matrices and kernels fan-in scaled.</summary>
    internal static FillKind Fill(string key, int rank) =>
        rank >= 2 ? (key.Contains("embedding") && !key.Contains("time_embedding") ? FillKind.Embedding : FillKind.FanIn)
        : key.EndsWith(".weight", StringComparison.Ordinal) ? FillKind.One
        : FillKind.SmallBias;

    private static JsonObject ModelIndex() => new()
    {
        ["_class_name"] = "StableDiffusionPipeline",
        ["_diffusers_version"] = "0.31.0",
        ["feature_extractor"] = new JsonArray(null, null),
        ["image_encoder"] = new JsonArray(null, null),
        ["requires_safety_checker"] = false,
        ["safety_checker"] = new JsonArray(null, null),
        ["scheduler"] = new JsonArray("diffusers", "PNDMScheduler"),
        ["text_encoder"] = new JsonArray("transformers", "CLIPTextModel"),
        ["tokenizer"] = new JsonArray("transformers", "CLIPTokenizer"),
        ["unet"] = new JsonArray("diffusers", "UNet2DConditionModel"),
        ["vae"] = new JsonArray("diffusers", "AutoencoderKL"),
    };

    /// <summary>SD 1.5's scheduler/scheduler_config.json.</summary>
    private static JsonObject SchedulerConfig() => new()
    {
        ["_class_name"] = "PNDMScheduler",
        ["_diffusers_version"] = "0.31.0",
        ["beta_end"] = 0.012,
        ["beta_schedule"] = "scaled_linear",
        ["beta_start"] = 0.00085,
        ["clip_sample"] = false,
        ["num_train_timesteps"] = 1000,
        ["prediction_type"] = "epsilon",
        ["set_alpha_to_one"] = false,
        ["skip_prk_steps"] = true,
        ["steps_offset"] = 1,
        ["timestep_spacing"] = "leading",
        ["trained_betas"] = null,
    };

    private static void WriteJson(string path, JsonNode node) =>
        File.WriteAllText(path, node.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

    private static Dictionary<string, string> Parse(string[] args)
    {
        var options = new Dictionary<string, string>();
        for (int i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
                throw new ArgumentException($"unexpected argument '{args[i]}'");
            options[args[i][2..]] = args[++i];
        }
        return options;
    }

    private static string Require(Dictionary<string, string> options, string name) =>
        options.GetValueOrDefault(name) ?? throw new ArgumentException($"--{name} is required");
}
