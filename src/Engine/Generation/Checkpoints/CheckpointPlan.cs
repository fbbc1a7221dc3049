using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Generation.Pipelines;
using Engine.Models;
using Engine.Models.Binding;
using Engine.Models.Checkpoints;
using Engine.Models.Text;

namespace Engine.Generation.Checkpoints;

/// <summary>
/// A single-file checkpoint opened (memory-mapped, header only) and described as a diffusers pipeline: the
/// pipeline class, each component's config JSON and weight source, the tokenizers and the scheduler config,
/// all before any weight is read. Configs come from the file's header (<see cref="CheckpointInspector"/>) or
/// from <see cref="CheckpointOptions.ConfigFolder"/>. Disposing unmaps the file.
/// </summary>
public sealed class CheckpointPlan : IDisposable
{
    private readonly List<IDisposable> _owned;

    private CheckpointPlan(List<IDisposable> owned) => _owned = owned;

    /// <summary>The checkpoint file (full path).</summary>
    public required string Path { get; init; }

    /// <summary>The recognised family.</summary>
    public required CheckpointKind Kind { get; init; }

    /// <summary>StableDiffusionPipeline or StableDiffusionXLPipeline.</summary>
    public required string PipelineClass { get; init; }

    /// <summary>The config folder's model_index.json, or an index standing for the file.</summary>
    public required PipelineIndex Index { get; init; }

    /// <summary>UNet2DConditionModel config and its tensors.</summary>
    public required (JsonObject Config, IWeightSource Source) UNet { get; init; }

    /// <summary>AutoencoderKL config and its tensors; a VAE folder given with --vae is loaded as it is (see <see cref="VaeFolder"/>).</summary>
    public required (JsonObject Config, IWeightSource? Source) Vae { get; init; }

    /// <summary>A diffusers VAE folder that replaces the checkpoint's VAE, or null.</summary>
    public string? VaeFolder { get; init; }

    /// <summary>The text encoders in order (config, tensors, the tokenizer folder or null for the built-in one, its pad token).</summary>
    public required IReadOnlyList<TextPart> TextEncoders { get; init; }

    /// <summary>The scheduler config (with --prediction-type applied).</summary>
    public required JsonObject Scheduler { get; init; }

    /// <summary>One text encoder of the plan.</summary>
    public sealed record TextPart(string Name, JsonObject Config, IWeightSource Source, string? TokenizerFolder, bool PadWithExclamation)
    {
        /// <summary>The tokenizer: the config folder's, or the built-in CLIP one.</summary>
        public ClipTokenizer Tokenizer() => TokenizerFolder is { } f ? ClipTokenizer.Load(f) : ClipTokenizer.Builtin(PadWithExclamation);
    }

    /// <summary>Opens <paramref name="path"/> and describes it; errors name the file, the config folder or the option.</summary>
    public static CheckpointPlan Open(string path, CheckpointOptions? options)
    {
        options ??= new CheckpointOptions();
        options.Validate();
        var file = SafetensorsFile.Open(path);
        var owned = new List<IDisposable> { file };
        try
        {
            var kind = CheckpointInspector.Kind(file);
            string pipelineClass = StockConfigs.PipelineClass(kind);
            bool xl = kind == CheckpointKind.StableDiffusionXL;
            PipelineIndex index;
            JsonObject unet, vae, scheduler;
            var texts = new List<(string Name, JsonObject Config, string? Tokenizer)>();
            if (options.ConfigFolder is { } folder)
            {
                index = PipelineIndex.Load(folder);
                if (index.ClassName != pipelineClass)
                    throw new InvalidDataException($"{index.FilePath}: pipeline class '{index.ClassName}' does not fit {path}, a {kind} checkpoint ({pipelineClass}).");
                unet = ReadJson(System.IO.Path.Combine(index.RequireComponent("unet", "UNet2DConditionModel"), ModelConfig.FileName));
                vae = ReadJson(System.IO.Path.Combine(index.RequireComponent("vae", "AutoencoderKL"), ModelConfig.FileName));
                scheduler = ReadJson(System.IO.Path.Combine(index.RequireComponent("scheduler"), "scheduler_config.json"));
                foreach (var (t, tok, cls) in xl ? new[] { ("text_encoder", "tokenizer", "CLIPTextModel"), ("text_encoder_2", "tokenizer_2", "CLIPTextModelWithProjection") } : [("text_encoder", "tokenizer", "CLIPTextModel")])
                    texts.Add((t, ReadJson(System.IO.Path.Combine(index.RequireComponent(t, cls), ModelConfig.FileName)), index.RequireComponent(tok, "CLIPTokenizer", "CLIPTokenizerFast")));
            }
            else
            {
                var inferred = CheckpointInspector.Inspect(file);
                index = PipelineIndex.ForCheckpoint(System.IO.Path.GetFullPath(path), pipelineClass);
                (unet, vae, scheduler) = (inferred.UNet, inferred.Vae, inferred.Scheduler);
                texts.Add(("text_encoder", inferred.TextEncoder, null));
                if (inferred.TextEncoder2 is { } t2) texts.Add(("text_encoder_2", t2, null));
            }
            if (options.PredictionType is { } p) scheduler["prediction_type"] = p;

            var parts = texts.Select((t, i) =>
            {
                bool openClip = kind == CheckpointKind.StableDiffusion2 || i == 1;
                string prefix = kind switch
                {
                    CheckpointKind.StableDiffusion1 => CheckpointInspector.Sd1TextPrefix,
                    CheckpointKind.StableDiffusion2 => CheckpointInspector.Sd2TextPrefix,
                    _ => i == 0 ? CheckpointInspector.XlTextPrefix : CheckpointInspector.XlText2Prefix,
                };
                IWeightSource source = openClip
                    ? CheckpointComponents.OpenClip(file, prefix, t.Name, IntField(t.Config, "num_hidden_layers", 12), Architecture(t.Config) == "CLIPTextModelWithProjection")
                    : CheckpointComponents.HuggingFaceClip(file, prefix, t.Name);
                return new TextPart(t.Name, t.Config, source, t.Tokenizer, openClip);
            }).ToList();

            string? vaeFolder = null;
            IWeightSource? vaeSource;
            int vaeBlocks = vae["block_out_channels"] is JsonArray blocks ? blocks.Count : 4;
            if (options.Vae is { } v && Directory.Exists(v)) { vaeFolder = System.IO.Path.GetFullPath(v); vaeSource = null; }
            else if (options.Vae is { } vf) vaeSource = VaeFileSource(vf, vaeBlocks, owned);
            else vaeSource = CheckpointComponents.Vae(file, vaeBlocks);

            return new CheckpointPlan(owned)
            {
                Path = System.IO.Path.GetFullPath(path), Kind = kind, PipelineClass = pipelineClass, Index = index,
                UNet = (unet, CheckpointComponents.UNet(file, IntField(unet, "layers_per_block", 2))),
                Vae = (vae, vaeSource), VaeFolder = vaeFolder, TextEncoders = parts, Scheduler = scheduler,
            };
        }
        catch
        {
            foreach (var o in owned) o.Dispose();
            throw;
        }
    }

    // A standalone VAE file: original names with or without first_stage_model., or diffusers' own.
    private static IWeightSource VaeFileSource(string path, int blocks, List<IDisposable> owned)
    {
        var file = SafetensorsFile.Open(path);
        owned.Add(file);
        if (file.Tensors.Keys.Any(k => k.StartsWith(CheckpointComponents.VaePrefix, StringComparison.Ordinal))) return CheckpointComponents.Vae(file, blocks);
        if (file.Tensors.Keys.Any(k => k.StartsWith("encoder.down.", StringComparison.Ordinal))) return CheckpointComponents.Vae(file, blocks, prefix: "");
        var named = SafetensorsWeightSource.OpenFile(path);
        owned.Add(named);
        return named;
    }

    private static JsonObject ReadJson(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found.");
        try { return JsonNode.Parse(Engine.Sampling.SchedulerConfig.SanitizeJson(File.ReadAllText(path)))?.AsObject() ?? throw new InvalidDataException($"{path}: expected a JSON object."); }
        catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e); }
    }

    internal static int IntField(JsonObject o, string key, int fallback) => o[key] is JsonValue v && v.TryGetValue(out int i) ? i : fallback;

    internal static string? Architecture(JsonObject o) => o["architectures"] is JsonArray a && a.Count > 0 ? a[0]?.GetValue<string>() : null;

    /// <summary>Unmaps the file (and a --vae file).</summary>
    public void Dispose()
    {
        foreach (var o in _owned) o.Dispose();
        _owned.Clear();
    }
}
