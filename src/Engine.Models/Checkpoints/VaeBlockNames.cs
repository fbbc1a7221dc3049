namespace Engine.Models.Checkpoints;

/// <summary>
/// The VAE's original LDM names (<c>encoder.down.i.block.j</c>, <c>decoder.up.k</c> in reversed order,
/// <c>mid.block_1</c> / <c>attn_1</c>, <c>norm_out</c>, <c>nin_shortcut</c>) mapped to diffusers' AutoencoderKL names.
/// </summary>
public static class VaeBlockNames
{
    private static readonly (string Original, string Diffusers)[] Mid =
    [
        ("mid.block_1", "mid_block.resnets.0"), ("mid.block_2", "mid_block.resnets.1"),
        ("mid.attn_1.norm", "mid_block.attentions.0.group_norm"), ("mid.attn_1.q", "mid_block.attentions.0.to_q"),
        ("mid.attn_1.k", "mid_block.attentions.0.to_k"), ("mid.attn_1.v", "mid_block.attentions.0.to_v"),
        ("mid.attn_1.proj_out", "mid_block.attentions.0.to_out.0"), ("norm_out", "conv_norm_out"),
        ("conv_in", "conv_in"), ("conv_out", "conv_out"),
    ];

    /// <summary>
    /// The diffusers name of an original VAE name (no <c>first_stage_model.</c> prefix), or null when it names nothing.
    /// </summary>
    /// <param name="original">e.g. <c>decoder.up.3.block.0.nin_shortcut.weight</c>.</param>
    /// <param name="blockCount">The number of decoder up blocks (len(block_out_channels)); the decoder's order is reversed.</param>
    public static string? ToDiffusers(string original, int blockCount)
    {
        ArgumentNullException.ThrowIfNull(original);
        foreach (var top in new[] { "quant_conv", "post_quant_conv" })
            if (UNetBlockNames.StartsWithModule(original, top, out var r)) return top + r;
        var dot = original.IndexOf('.');
        if (dot < 0) return null;
        string side = original[..dot], rest = original[(dot + 1)..];
        if (side is not ("encoder" or "decoder")) return null;
        foreach (var (o, d) in Mid)
            if (UNetBlockNames.StartsWithModule(rest, o, out var r)) return $"{side}.{d}{Resnet(r)}";
        var parts = rest.Split('.');
        if (parts.Length < 4 || !int.TryParse(parts[1], out int i) || i < 0) return null;
        string tail = parts.Length > 3 ? "." + string.Join('.', parts, 3, parts.Length - 3) : "";
        if (side == "encoder" && parts[0] == "down")
        {
            if (parts[2] == "block" && int.TryParse(parts[3], out int j))
                return $"encoder.down_blocks.{i}.resnets.{j}{Resnet(Tail(parts, 4))}";
            return parts[2] == "downsample" ? $"encoder.down_blocks.{i}.downsamplers.0{tail}" : null;
        }
        if (side == "decoder" && parts[0] == "up" && i < blockCount)
        {
            int b = blockCount - 1 - i;
            if (parts[2] == "block" && int.TryParse(parts[3], out int j))
                return $"decoder.up_blocks.{b}.resnets.{j}{Resnet(Tail(parts, 4))}";
            return parts[2] == "upsample" ? $"decoder.up_blocks.{b}.upsamplers.0{tail}" : null;
        }
        return null;
    }

    /// <summary>Whether a diffusers VAE name is an attention projection that the original stores as a 1x1 convolution.</summary>
    public static bool IsConvStoredLinear(string diffusers) =>
        diffusers.EndsWith(".weight", StringComparison.Ordinal) && diffusers.Contains("mid_block.attentions.0.to_", StringComparison.Ordinal);

    // ResNet parts keep their names except the shortcut.
    private static string Resnet(string rest) =>
        UNetBlockNames.StartsWithModule(rest.Length > 0 ? rest[1..] : rest, "nin_shortcut", out var r) ? ".conv_shortcut" + r : rest;

    private static string Tail(string[] parts, int from) => from >= parts.Length ? "" : "." + string.Join('.', parts, from, parts.Length - from);
}
