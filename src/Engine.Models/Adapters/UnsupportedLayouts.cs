namespace Engine.Models.Adapters;

/// <summary>
/// Adapter layouts that share LoRA's file conventions but not its math, recognised by their key names so
/// that such a file is refused with a clear message instead of being half applied.
/// </summary>
internal static class UnsupportedLayouts
{
    // Key fragments (matched as ".fragment" or "_fragment" endings or segments) and the layout they mark.
    private static readonly (string Fragment, string Layout)[] Markers =
    [
        ("hada_w1_a", "LoHa"), ("hada_w1_b", "LoHa"), ("hada_w2_a", "LoHa"), ("hada_w2_b", "LoHa"), ("hada_t1", "LoHa"), ("hada_t2", "LoHa"),
        ("lokr_w1", "LoKr"), ("lokr_w2", "LoKr"), ("lokr_w1_a", "LoKr"), ("lokr_w1_b", "LoKr"), ("lokr_w2_a", "LoKr"), ("lokr_w2_b", "LoKr"), ("lokr_t2", "LoKr"),
        ("dora_scale", "DoRA"), ("lora_magnitude_vector", "DoRA"),
        ("lora_mid", "LoCon with a Tucker-decomposed middle (lora_mid)"),
        ("oft_blocks", "OFT"), ("oft_diag", "OFT"),
        ("diff", "full weight-difference (diff)"), ("diff_b", "full weight-difference (diff_b)"),
        ("lora_linear_layer", "diffusers attention-processor LoRA (lora_linear_layer)"),
    ];

    /// <summary>The first key that marks an unsupported layout, with the layout's name; null when none does.</summary>
    public static (string Key, string Layout)? Find(IEnumerable<string> keys)
    {
        foreach (var key in keys)
            foreach (var segment in key.Split('.'))
                foreach (var (fragment, layout) in Markers)
                    if (segment == fragment) return (key, layout);
        return null;
    }
}
