using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.Models.Checkpoints;

/// <summary>
/// Recognises a single-file checkpoint from its header alone and infers its diffusers configs: the family
/// from the key prefixes, every size a tensor shape gives (channels, block counts and types, layers per
/// block, cross-attention and text widths, layer counts, projection widths) from the shapes, and the rest
/// (attention heads, VAE scaling factor, the scheduler) from the family's <see cref="StockConfigs"/>.
/// </summary>
public static class CheckpointInspector
{
    /// <summary>SD 1.x's CLIP-L prefix.</summary>
    public const string Sd1TextPrefix = "cond_stage_model.transformer.";

    /// <summary>SD 2.x's OpenCLIP-H prefix.</summary>
    public const string Sd2TextPrefix = "cond_stage_model.model.";

    /// <summary>SDXL's CLIP-L prefix.</summary>
    public const string XlTextPrefix = "conditioner.embedders.0.transformer.";

    /// <summary>SDXL's OpenCLIP-bigG prefix.</summary>
    public const string XlText2Prefix = "conditioner.embedders.1.model.";

    /// <summary>Whether the header looks like an original-layout checkpoint (it has UNet tensors under <c>model.diffusion_model.</c>).</summary>
    public static bool IsCheckpoint(SafetensorsFile file) => file.Tensors.Keys.Any(k => k.StartsWith(CheckpointComponents.UNetPrefix, StringComparison.Ordinal));

    /// <summary>The family, from the text encoders' prefixes; throws naming the file when it is none of them.</summary>
    public static CheckpointKind Kind(SafetensorsFile file)
    {
        bool Has(string prefix) => file.Tensors.Keys.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));
        if (!IsCheckpoint(file))
            throw new ModelLoadException($"{file.Path}: not a single-file checkpoint: no UNet tensors under '{CheckpointComponents.UNetPrefix}'.");
        if (!Has(CheckpointComponents.VaePrefix))
            throw new ModelLoadException($"{file.Path}: no VAE tensors under '{CheckpointComponents.VaePrefix}'; give one with --vae.");
        if (Has(XlTextPrefix) && Has(XlText2Prefix)) return CheckpointKind.StableDiffusionXL;
        if (Has("conditioner.embedders.")) throw new ModelLoadException($"{file.Path}: an SGM file without both '{XlTextPrefix}' and '{XlText2Prefix}' (an SDXL refiner?) is not supported.");
        if (Has(Sd2TextPrefix)) return CheckpointKind.StableDiffusion2;
        if (Has(Sd1TextPrefix)) return CheckpointKind.StableDiffusion1;
        throw new ModelLoadException($"{file.Path}: no text encoder under '{Sd1TextPrefix}', '{Sd2TextPrefix}' or '{XlTextPrefix}'.");
    }

    /// <summary>Recognises <paramref name="file"/> and infers every diffusers config from its header.</summary>
    public static CheckpointConfigs Inspect(SafetensorsFile file)
    {
        var kind = Kind(file);
        try { return Infer(file, kind); }
        catch (ModelLoadException e) { throw new ModelLoadException($"{file.Path}: {e.Message}", e); }
    }

    private static CheckpointConfigs Infer(SafetensorsFile file, CheckpointKind kind)
    {
        var shapes = new HeaderShapes(file);
        var unet = CheckpointConfigInference.UNet(StockConfigs.Component(kind, "unet")!, shapes.Under(CheckpointComponents.UNetPrefix));
        var vae = CheckpointConfigInference.Vae(StockConfigs.Component(kind, "vae")!, shapes.Under(CheckpointComponents.VaePrefix));
        JsonObject text, text2 = null!;
        switch (kind)
        {
            case CheckpointKind.StableDiffusion1:
                text = CheckpointConfigInference.HuggingFaceClip(StockConfigs.Component(kind, "text_encoder")!, shapes.Under(Sd1TextPrefix));
                break;
            case CheckpointKind.StableDiffusion2:
                // SD 2 conditions on the penultimate layer: diffusers' text encoder keeps all but the last block.
                text = CheckpointConfigInference.OpenClip(StockConfigs.Component(kind, "text_encoder")!, shapes.Under(Sd2TextPrefix), dropLast: true);
                break;
            default:
                text = CheckpointConfigInference.HuggingFaceClip(StockConfigs.Component(kind, "text_encoder")!, shapes.Under(XlTextPrefix));
                text2 = CheckpointConfigInference.OpenClip(StockConfigs.Component(kind, "text_encoder_2")!, shapes.Under(XlText2Prefix), dropLast: false);
                break;
        }
        return new CheckpointConfigs(file.Path, kind, StockConfigs.PipelineClass(kind), unet, vae, text,
            kind == CheckpointKind.StableDiffusionXL ? text2 : null, StockConfigs.Component(kind, "scheduler")!);
    }
}

/// <summary>Shapes of a header, by key, and the names under a prefix.</summary>
internal sealed class HeaderShapes(SafetensorsFile file)
{
    public string Path => file.Path;

    public Dictionary<string, int[]> Under(string prefix) =>
        file.Tensors.Where(p => p.Key.StartsWith(prefix, StringComparison.Ordinal))
            .ToDictionary(p => p.Key[prefix.Length..], p => (int[])p.Value.Shape.Clone(), StringComparer.Ordinal);
}
