using System.Globalization;

namespace Engine.Models.Checkpoints;

/// <summary>
/// The UNet's module names in the original LDM / SGM layout (<c>input_blocks</c>, <c>middle_block</c>,
/// <c>output_blocks</c>, ResNets with <c>in_layers</c> / <c>out_layers</c> / <c>emb_layers</c> /
/// <c>skip_connection</c>) and in diffusers' layout (<c>down_blocks</c>, <c>mid_block</c>, <c>up_blocks</c>,
/// <c>norm1</c> / <c>conv1</c> / <c>time_emb_proj</c> / ...), both ways. Names are dotted module paths without
/// a file prefix (<c>input_blocks.4.1.proj_in.weight</c>, or just the module <c>input_blocks.4.1.proj_in</c>).
/// <para>
/// With L = layers_per_block, a down block b holds <c>input_blocks.{1 + b(L+1) + j}</c> (resnet j at <c>.0</c>,
/// attention j at <c>.1</c>) and its downsampler at <c>input_blocks.{(b+1)(L+1)}.0.op</c>; up block b holds
/// <c>output_blocks.{b(L+1) + j}</c> for j = 0..L and its upsampler at <c>.2.conv</c> (after an attention) or
/// <c>.1.conv</c> (no attention). Inside attentions nothing is renamed. Only L is needed: the indices come
/// from it, and an upsampler is told from an attention by its <c>conv</c> child.
/// </para>
/// </summary>
public static class UNetBlockNames
{
    private static readonly (string Original, string Diffusers)[] ResnetParts =
    [
        ("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
        ("out_layers.0", "norm2"), ("out_layers.3", "conv2"), ("skip_connection", "conv_shortcut"),
    ];

    private static readonly (string Original, string Diffusers)[] TopLevel =
    [
        ("time_embed.0", "time_embedding.linear_1"), ("time_embed.2", "time_embedding.linear_2"),
        ("label_emb.0.0", "add_embedding.linear_1"), ("label_emb.0.2", "add_embedding.linear_2"),
        ("input_blocks.0.0", "conv_in"), ("out.0", "conv_norm_out"), ("out.2", "conv_out"),
    ];

    /// <summary>
    /// The diffusers name of an original-layout UNet name, or null when it names nothing a diffusers
    /// UNet2DConditionModel has (an unknown module, a ResNet part with no counterpart).
    /// </summary>
    /// <param name="original">e.g. <c>output_blocks.2.1.conv.weight</c> (no <c>model.diffusion_model.</c> prefix).</param>
    /// <param name="layersPerBlock">L, the config's <c>layers_per_block</c> (2 in SD 1.x/2.x/XL).</param>
    public static string? ToDiffusers(string original, int layersPerBlock)
    {
        ArgumentNullException.ThrowIfNull(original);
        if (layersPerBlock < 1) throw new ArgumentOutOfRangeException(nameof(layersPerBlock), layersPerBlock, "layers_per_block must be at least 1.");
        foreach (var (o, d) in TopLevel)
            if (StartsWithModule(original, o, out var rest)) return d + rest;
        int step = layersPerBlock + 1;
        var parts = original.Split('.');
        if (parts[0] == "middle_block" && parts.Length >= 2 && Index(parts[1]) is { } m and <= 2)
        {
            var tail = Tail(parts, 2);
            return m == 1 ? "mid_block.attentions.0" + tail : ResnetToDiffusers($"mid_block.resnets.{m / 2}", tail);
        }
        if (parts.Length < 3 || Index(parts[1]) is not { } i || Index(parts[2]) is not { } k) return null;
        var rest3 = Tail(parts, 3);
        if (parts[0] == "input_blocks" && i >= 1)
        {
            int b = (i - 1) / step, j = (i - 1) % step;
            if (j == layersPerBlock)
                return k == 0 && rest3.StartsWith(".op.", StringComparison.Ordinal) || k == 0 && rest3 == ".op"
                    ? $"down_blocks.{b}.downsamplers.0.conv" + rest3[3..] : null;
            return k switch
            {
                0 => ResnetToDiffusers($"down_blocks.{b}.resnets.{j}", rest3),
                1 => $"down_blocks.{b}.attentions.{j}" + rest3,
                _ => null,
            };
        }
        if (parts[0] == "output_blocks")
        {
            int b = i / step, j = i % step;
            bool conv = rest3 == ".conv" || rest3.StartsWith(".conv.", StringComparison.Ordinal);
            return k switch
            {
                0 => ResnetToDiffusers($"up_blocks.{b}.resnets.{j}", rest3),
                1 when conv => j == layersPerBlock ? $"up_blocks.{b}.upsamplers.0" + rest3 : null,
                1 => $"up_blocks.{b}.attentions.{j}" + rest3,
                2 when conv => j == layersPerBlock ? $"up_blocks.{b}.upsamplers.0" + rest3 : null,
                _ => null,
            };
        }
        return null;
    }

    /// <summary>
    /// The original-layout name of a diffusers UNet name, or null when it has none.
    /// </summary>
    /// <param name="diffusers">e.g. <c>up_blocks.1.upsamplers.0.conv.weight</c>.</param>
    /// <param name="layersPerBlock">L, the config's <c>layers_per_block</c>.</param>
    /// <param name="upBlockHasAttentions">Whether up block b has attentions (its upsampler then sits at <c>.2</c>, not <c>.1</c>).</param>
    public static string? ToOriginal(string diffusers, int layersPerBlock, Func<int, bool> upBlockHasAttentions)
    {
        if (layersPerBlock < 1) throw new ArgumentOutOfRangeException(nameof(layersPerBlock), layersPerBlock, "layers_per_block must be at least 1.");
        return ToOriginal(diffusers, _ => layersPerBlock, _ => layersPerBlock + 1, upBlockHasAttentions);
    }

    /// <summary>
    /// The original-layout name of a diffusers UNet name, or null when it has none, for a UNet whose blocks may differ in
    /// length: down block b holds <paramref name="downResnets"/>(b) ResNets and up block b <paramref name="upResnets"/>(b)
    /// (0 for a block the UNet does not have). The original blocks are numbered on through the down blocks (each but the
    /// last followed by its downsampler) and through the up blocks, so a uniform L gives the numbers of the overload above.
    /// </summary>
    public static string? ToOriginal(string diffusers, Func<int, int> downResnets, Func<int, int> upResnets, Func<int, bool> upBlockHasAttentions)
    {
        ArgumentNullException.ThrowIfNull(diffusers);
        ArgumentNullException.ThrowIfNull(downResnets);
        ArgumentNullException.ThrowIfNull(upResnets);
        ArgumentNullException.ThrowIfNull(upBlockHasAttentions);
        foreach (var (o, d) in TopLevel)
            if (StartsWithModule(diffusers, d, out var rest)) return o + rest;
        var parts = diffusers.Split('.');
        if (parts[0] == "mid_block" && parts.Length >= 3 && Index(parts[2]) is { } m)
        {
            var tail = Tail(parts, 3);
            return (parts[1], m) switch
            {
                ("attentions", 0) => "middle_block.1" + tail,
                ("resnets", 0 or 1) => ResnetToOriginal($"middle_block.{2 * m}", tail),
                _ => null,
            };
        }
        if (parts.Length < 4 || Index(parts[1]) is not { } b || Index(parts[3]) is not { } j) return null;
        var rest4 = Tail(parts, 4);
        if (parts[0] == "down_blocks")
        {
            int first = 1, count = downResnets(b);
            for (int k = 0; k < b; k++) first += downResnets(k) + 1;
            return parts[2] switch
            {
                "resnets" when j < count => ResnetToOriginal($"input_blocks.{first + j}.0", rest4),
                "attentions" when j < count => $"input_blocks.{first + j}.1" + rest4,
                "downsamplers" when j == 0 && rest4.Length > 0 && StartsWithModule(rest4[1..], "conv", out var r) => $"input_blocks.{first + count}.0.op" + r,
                _ => null,
            };
        }
        if (parts[0] == "up_blocks")
        {
            int first = 0, count = upResnets(b);
            for (int k = 0; k < b; k++) first += upResnets(k);
            return parts[2] switch
            {
                "resnets" when j < count => ResnetToOriginal($"output_blocks.{first + j}.0", rest4),
                "attentions" when j < count => $"output_blocks.{first + j}.1" + rest4,
                "upsamplers" when j == 0 => $"output_blocks.{first + count - 1}.{(upBlockHasAttentions(b) ? 2 : 1)}" + rest4,
                _ => null,
            };
        }
        return null;
    }

    /// <summary>
    /// L (layers_per_block) read from original-layout names: the first downsampler sits at
    /// <c>input_blocks.{L+1}.0.op</c>. Null when the names hold no downsampler.
    /// </summary>
    public static int? LayersPerBlock(IEnumerable<string> originalNames)
    {
        int? best = null;
        foreach (var name in originalNames)
        {
            var parts = name.Split('.');
            if (parts.Length >= 4 && parts[0] == "input_blocks" && parts[2] == "0" && parts[3] == "op" && Index(parts[1]) is { } i and >= 2)
                best = best is { } v ? Math.Min(v, i - 1) : i - 1;
        }
        return best;
    }

    private static string? ResnetToDiffusers(string module, string rest)
    {
        foreach (var (o, d) in ResnetParts)
            if (StartsWithModule(rest.Length > 0 ? rest[1..] : rest, o, out var r)) return $"{module}.{d}{r}";
        return null;
    }

    private static string? ResnetToOriginal(string module, string rest)
    {
        foreach (var (o, d) in ResnetParts)
            if (StartsWithModule(rest.Length > 0 ? rest[1..] : rest, d, out var r)) return $"{module}.{o}{r}";
        return null;
    }

    /// <summary>Whether <paramref name="name"/> is module <paramref name="module"/> or a name inside it; <paramref name="rest"/> is what follows (with its leading dot).</summary>
    internal static bool StartsWithModule(string name, string module, out string rest)
    {
        rest = "";
        if (!name.StartsWith(module, StringComparison.Ordinal)) return false;
        if (name.Length == module.Length) return true;
        if (name[module.Length] != '.') return false;
        rest = name[module.Length..];
        return true;
    }

    private static string Tail(string[] parts, int from) => from >= parts.Length ? "" : "." + string.Join('.', parts, from, parts.Length - from);

    private static int? Index(string s) =>
        s.Length > 0 && s.All(char.IsAsciiDigit) && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : null;
}
