using Engine.Core.Safetensors;

namespace Engine.Models.Checkpoints;

/// <summary>
/// Builds the diffusers view of each component of a single-file checkpoint. Every file tensor under a
/// component's prefix must map onto a diffusers name (else the load fails naming the file and the first such
/// keys); other prefixes (EMA copies, optimizer state, schedule buffers) are never read.
/// </summary>
public static class CheckpointComponents
{
    /// <summary>The UNet's prefix in LDM and SGM files.</summary>
    public const string UNetPrefix = "model.diffusion_model.";

    /// <summary>The VAE's prefix.</summary>
    public const string VaePrefix = "first_stage_model.";

    /// <summary>The UNet under diffusers' names, given L (layers_per_block).</summary>
    public static CheckpointWeightSource UNet(SafetensorsFile file, int layersPerBlock) =>
        Build(file, "unet", UNetPrefix, (name, key, shape) =>
            UNetBlockNames.ToDiffusers(name, layersPerBlock) is { } d ? [(d, new CheckpointTensor(key, shape))] : null);

    /// <summary>The VAE under diffusers' names, given its number of blocks; attention 1x1 convolutions become Linear weights. A standalone VAE file has no prefix.</summary>
    public static CheckpointWeightSource Vae(SafetensorsFile file, int blockCount, string prefix = VaePrefix) =>
        Build(file, "vae", prefix, (name, key, shape) =>
        {
            if (VaeBlockNames.ToDiffusers(name, blockCount) is not { } d) return null;
            bool squeeze = VaeBlockNames.IsConvStoredLinear(d) && shape.Length == 4 && shape[2] == 1 && shape[3] == 1;
            return [(d, new CheckpointTensor(key, squeeze ? [shape[0], shape[1]] : shape))];
        });

    /// <summary>A Hugging Face CLIP text encoder stored under <paramref name="prefix"/> (names kept).</summary>
    public static CheckpointWeightSource HuggingFaceClip(SafetensorsFile file, string prefix, string component) =>
        Build(file, component, prefix, (name, key, shape) =>
        {
            // Files saved by older transformers drop the "text_model." level.
            if (name.StartsWith("embeddings.", StringComparison.Ordinal) || name.StartsWith("encoder.", StringComparison.Ordinal) || name.StartsWith("final_layer_norm.", StringComparison.Ordinal))
                name = "text_model." + name;
            if (ClipTextNames.IsIgnoredBuffer(name)) return [];
            return name.StartsWith("text_model.", StringComparison.Ordinal) || name == "text_projection.weight" ? [(name, new CheckpointTensor(key, shape))] : null;
        });

    /// <summary>An OpenCLIP text encoder stored under <paramref name="prefix"/>, keeping its first <paramref name="layerCount"/> layers.</summary>
    public static CheckpointWeightSource OpenClip(SafetensorsFile file, string prefix, string component, int layerCount, bool withProjection) =>
        Build(file, component, prefix, (name, key, shape) => ClipTextNames.OpenClipToDiffusers(name, key, shape, layerCount, withProjection));

    private delegate IReadOnlyList<(string, CheckpointTensor)>? Mapper(string name, string fileKey, int[] shape);

    private static CheckpointWeightSource Build(SafetensorsFile file, string component, string prefix, Mapper map)
    {
        var result = new Dictionary<string, CheckpointTensor>(StringComparer.Ordinal);
        var unmatched = new List<string>();
        foreach (var (key, info) in file.Tensors)
        {
            if (!key.StartsWith(prefix, StringComparison.Ordinal)) continue;
            var mapped = map(key[prefix.Length..], key, (int[])info.Shape.Clone());
            if (mapped is null) { unmatched.Add(key); continue; }
            foreach (var (d, t) in mapped)
                if (!result.TryAdd(d, t))
                    throw new ModelLoadException($"{file.Path}: '{key}' and '{result[d].FileKey}' both map onto the {component} tensor '{d}'.");
        }
        if (unmatched.Count > 0)
            throw new ModelLoadException($"{file.Path}: {unmatched.Count} {component} tensors under '{prefix}' match no diffusers name, e.g. {string.Join(", ", unmatched.Order(StringComparer.Ordinal).Take(5).Select(k => $"'{k}'"))}.");
        if (result.Count == 0)
            throw new ModelLoadException($"{file.Path}: no {component} tensors under '{prefix}'.");
        return new CheckpointWeightSource(file, component, result);
    }
}
