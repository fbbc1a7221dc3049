using System.Text.Json.Nodes;

namespace Engine.Models.Checkpoints;

/// <summary>
/// The stock diffusers configs of SD 1.5, SD 2.1 (768, v-prediction) and SDXL base 1.0, the facts a single file
/// does not carry (attention heads, scaling factors, schedules); kept once, in <c>stock_configs.json</c>.
/// </summary>
public static class StockConfigs
{
    private static readonly Lazy<JsonObject> All = new(() =>
    {
        using var stream = typeof(StockConfigs).Assembly.GetManifestResourceStream("Engine.Models.Checkpoints.stock_configs.json")
            ?? throw new InvalidOperationException("resource stock_configs.json is missing from Engine.Models.");
        return JsonNode.Parse(stream)!.AsObject();
    });

    /// <summary>The name of a kind's entry (sd15, sd21, sdxl).</summary>
    public static string Name(CheckpointKind kind) => kind switch
    {
        CheckpointKind.StableDiffusion1 => "sd15",
        CheckpointKind.StableDiffusion2 => "sd21",
        _ => "sdxl",
    };

    /// <summary>A fresh copy of one component's stock config (unet, vae, text_encoder, text_encoder_2, scheduler), or null when the kind has none.</summary>
    public static JsonObject? Component(CheckpointKind kind, string component) =>
        All.Value[Name(kind)]![component]?.DeepClone().AsObject();

    /// <summary>The diffusers pipeline class of a kind.</summary>
    public static string PipelineClass(CheckpointKind kind) => All.Value[Name(kind)]!["pipeline_class"]!.GetValue<string>();
}
