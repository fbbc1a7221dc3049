namespace Engine.Models.Checkpoints;

/// <summary>
/// Text-encoder names in single files. Hugging Face CLIP (SD 1.x's <c>cond_stage_model.transformer.</c>, SDXL's
/// <c>conditioner.embedders.0.transformer.</c>) keeps transformers' names. OpenCLIP (SD 2.x's
/// <c>cond_stage_model.model.</c>, SDXL's <c>conditioner.embedders.1.model.</c>) renames them, fuses q/k/v into
/// <c>in_proj_weight</c> [3w, w] / <c>in_proj_bias</c> [3w] and stores <c>text_projection</c> as [w, proj], the
/// transpose of diffusers' Linear weight.
/// </summary>
public static class ClipTextNames
{
    /// <summary>Buffers files carry that are not weights (transformers' position ids, OpenCLIP's logit scale).</summary>
    public static bool IsIgnoredBuffer(string name) =>
        name is "text_model.embeddings.position_ids" or "logit_scale";

    private static readonly (string Original, string Diffusers)[] LayerParts =
    [
        ("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"), ("ln_2", "layer_norm2"),
        ("mlp.c_fc", "mlp.fc1"), ("mlp.c_proj", "mlp.fc2"),
    ];

    /// <summary>
    /// The diffusers tensors one OpenCLIP tensor (name without the prefix, with its file shape) becomes: none for a
    /// buffer, a layer at or past <paramref name="layerCount"/> (SD 2.x keeps 23 of 24) or, without
    /// <paramref name="withProjection"/>, the projection; three row slices for a fused in_proj. Null when the
    /// name is not OpenCLIP's.
    /// </summary>
    public static IReadOnlyList<(string Diffusers, CheckpointTensor Tensor)>? OpenClipToDiffusers(string name, string fileKey, int[] shape, int layerCount, bool withProjection)
    {
        const string Text = "text_model.";
        (string, CheckpointTensor) Same(string d) => (d, new CheckpointTensor(fileKey, shape));
        switch (name)
        {
            case "logit_scale": return [];
            case "token_embedding.weight": return [Same(Text + "embeddings.token_embedding.weight")];
            case "positional_embedding": return [Same(Text + "embeddings.position_embedding.weight")];
            case "ln_final.weight" or "ln_final.bias": return [Same(Text + "final_layer_norm" + name[8..])];
            case "text_projection":
                return withProjection && shape.Length == 2 ? [("text_projection.weight", new CheckpointTensor(fileKey, [shape[1], shape[0]], Transpose: true))] : [];
        }
        const string Blocks = "transformer.resblocks.";
        if (!name.StartsWith(Blocks, StringComparison.Ordinal)) return null;
        var rest = name[Blocks.Length..];
        int dot = rest.IndexOf('.');
        if (dot <= 0 || !int.TryParse(rest[..dot], out int i) || i < 0) return null;
        if (i >= layerCount) return [];
        string part = rest[(dot + 1)..], layer = $"{Text}encoder.layers.{i}.";
        if (part is "attn.in_proj_weight" or "attn.in_proj_bias")
        {
            if (shape[0] % 3 != 0) return null;
            int w = shape[0] / 3;
            string suffix = part.EndsWith("weight", StringComparison.Ordinal) ? "weight" : "bias";
            int[] sliced = shape.Length == 2 ? [w, shape[1]] : [w];
            return new[] { "q", "k", "v" }.Select((p, n) => ($"{layer}self_attn.{p}_proj.{suffix}", new CheckpointTensor(fileKey, sliced, n * w, w))).ToList();
        }
        foreach (var (o, d) in LayerParts)
            if (UNetBlockNames.StartsWithModule(part, o, out var r)) return [Same(layer + d + r)];
        return null;
    }
}
