using System.Text.Json.Nodes;

namespace Engine.Models.Checkpoints;

/// <summary>
/// The diffusers configs inferred for a single-file checkpoint, under diffusers' field names (model configs
/// with <c>_class_name</c>, text encoders with transformers' <c>architectures</c>).
/// </summary>
/// <param name="Path">The checkpoint file.</param>
/// <param name="Kind">The recognised family.</param>
/// <param name="PipelineClass">The diffusers pipeline class it maps to.</param>
/// <param name="UNet">UNet2DConditionModel config.</param>
/// <param name="Vae">AutoencoderKL config.</param>
/// <param name="TextEncoder">The first (or only) text encoder's config.</param>
/// <param name="TextEncoder2">SDXL's second text encoder, else null.</param>
/// <param name="Scheduler">The scheduler config (its <c>prediction_type</c> among them).</param>
public sealed record CheckpointConfigs(string Path, CheckpointKind Kind, string PipelineClass, JsonObject UNet, JsonObject Vae,
    JsonObject TextEncoder, JsonObject? TextEncoder2, JsonObject Scheduler)
{
    /// <summary>The scheduler's prediction type.</summary>
    public string PredictionType => Scheduler["prediction_type"]?.GetValue<string>() ?? "epsilon";

    /// <summary>One JSON object: <c>pipeline_class</c> and the configs under <c>unet</c>, <c>vae</c>, <c>text_encoder</c>, <c>text_encoder_2</c>, <c>scheduler</c>.</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["pipeline_class"] = PipelineClass,
            ["checkpoint"] = StockConfigs.Name(Kind),
            ["unet"] = UNet.DeepClone(),
            ["vae"] = Vae.DeepClone(),
            ["text_encoder"] = TextEncoder.DeepClone(),
        };
        if (TextEncoder2 is not null) o["text_encoder_2"] = TextEncoder2.DeepClone();
        o["scheduler"] = Scheduler.DeepClone();
        return o;
    }

    /// <summary>A copy with the scheduler's prediction type replaced (<c>--prediction-type</c>).</summary>
    public CheckpointConfigs WithPredictionType(string predictionType)
    {
        var scheduler = Scheduler.DeepClone().AsObject();
        scheduler["prediction_type"] = predictionType;
        return this with { Scheduler = scheduler };
    }
}
