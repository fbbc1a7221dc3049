namespace Engine.Models;

/// <summary>
/// The values a <c>config.json</c> size field may take, by key, for every model class: wide enough for
/// any released checkpoint, narrow enough that a typo or a hostile file (a negative channel count,
/// a zero patch size, a million layers) is refused when the field is read, naming it, before anything
/// is built. Whether the sizes then fit the weights is the binding's question.
/// </summary>
public static class ConfigRanges
{
    private const int Width = 1 << 16, Wide = 1 << 20, Depth = 1024, Table = 1 << 24;

    private static readonly Dictionary<string, (int Min, int Max)> Integers = new(StringComparer.Ordinal)
    {
        ["in_channels"] = (1, Width), ["out_channels"] = (1, Width), ["latent_channels"] = (1, Width),
        ["block_out_channels"] = (1, Width), ["norm_num_groups"] = (1, Width), ["attn_norm_num_groups"] = (1, Width),
        ["layers_per_block"] = (1, Depth), ["transformer_layers_per_block"] = (1, Depth),
        ["num_layers"] = (1, Depth), ["num_hidden_layers"] = (1, Depth),
        ["sample_size"] = (1, Width), ["patch_size"] = (1, 64), ["pos_embed_max_size"] = (1, Width),
        ["num_attention_heads"] = (1, 4096), ["attention_head_dim"] = (1, Width),
        ["cross_attention_dim"] = (1, Wide), ["joint_attention_dim"] = (1, Wide), ["caption_projection_dim"] = (1, Wide),
        ["pooled_projection_dim"] = (1, Wide), ["projection_dim"] = (1, Wide), ["hidden_size"] = (1, Wide),
        ["intermediate_size"] = (1, Wide), ["time_embedding_dim"] = (1, Wide), ["addition_time_embed_dim"] = (1, Wide),
        ["projection_class_embeddings_input_dim"] = (1, Wide),
        ["num_embeds_ada_norm"] = (1, Table), ["num_class_embeds"] = (1, Table), ["vocab_size"] = (1, Table),
        ["max_position_embeddings"] = (1, Wide),
        ["conv_in_kernel"] = (1, 63), ["conv_out_kernel"] = (1, 63), ["downsample_padding"] = (0, 63),
    };

    private static readonly Dictionary<string, (double Min, double Max)> Numbers = new(StringComparer.Ordinal)
    {
        // A normalisation epsilon of 0 or less divides by zero (or takes the root of a negative) on flat inputs.
        ["norm_eps"] = (1e-30, 1), ["layer_norm_eps"] = (1e-30, 1),
        // The UNet mid block divides its output by its scale factor and the VAE divides latents by scaling_factor:
        // 0 gives infinities at the first step, a negative value silently flips the signal.
        ["mid_block_scale_factor"] = (1e-6, 1e6), ["scaling_factor"] = (1e-6, 1e6), ["shift_factor"] = (-1e6, 1e6),
    };

    /// <summary>The allowed range of integer field <paramref name="key"/>, or null when it has none.</summary>
    public static (int Min, int Max)? Integer(string key) => Integers.TryGetValue(key, out var r) ? r : null;

    /// <summary>The allowed range of number field <paramref name="key"/>, or null when it has none.</summary>
    public static (double Min, double Max)? Number(string key) => Numbers.TryGetValue(key, out var r) ? r : null;
}
