namespace Engine.Models.Adapters;

/// <summary>
/// The original (LDM / SGM) module paths of a diffusers UNet2DConditionModel, which kohya's SDXL LoRA files
/// use: <c>input_blocks.N.0</c> / <c>.1</c> for a down block's ResNet / attention, <c>input_blocks.N.0.op</c> for
/// its downsampler, <c>middle_block.0/1/2</c>, <c>output_blocks.N.0</c> / <c>.1</c> and the upsampler at
/// <c>output_blocks.N.1.conv</c> or <c>.2.conv</c> (after an attention); inside a ResNet <c>in_layers.2</c> = conv1,
/// <c>out_layers.3</c> = conv2, <c>emb_layers.1</c> = time_emb_proj, <c>skip_connection</c> = conv_shortcut.
/// Block numbers are counted from the model's own modules, so any layers_per_block works.
/// </summary>
/// <remarks>Only the LoRA targets are needed here; the single-file checkpoint loader maps whole checkpoints and
/// holds the same block rule for every tensor.</remarks>
public sealed class SgmUNetNames
{
    private static readonly Dictionary<string, string> ResnetInner = new(StringComparer.Ordinal)
    {
        ["conv1"] = "in_layers.2", ["conv2"] = "out_layers.3", ["time_emb_proj"] = "emb_layers.1", ["conv_shortcut"] = "skip_connection",
        ["norm1"] = "in_layers.0", ["norm2"] = "out_layers.0",
    };

    private readonly Dictionary<string, string> _blocks = new(StringComparer.Ordinal)
    {
        ["conv_in"] = "input_blocks.0.0", ["time_embedding.linear_1"] = "time_embed.0", ["time_embedding.linear_2"] = "time_embed.2",
        ["add_embedding.linear_1"] = "label_emb.0.0", ["add_embedding.linear_2"] = "label_emb.0.2",
        ["conv_norm_out"] = "out.0", ["conv_out"] = "out.2",
        ["mid_block.resnets.0"] = "middle_block.0", ["mid_block.attentions.0"] = "middle_block.1", ["mid_block.resnets.1"] = "middle_block.2",
    };

    /// <summary>Builds the block numbering from the diffusers module paths of one UNet (<c>down_blocks.0.resnets.0.conv1</c>, ...).</summary>
    public SgmUNetNames(IEnumerable<string> modulePaths)
    {
        var paths = modulePaths.ToList();
        int input = 1;
        for (int b = 0; Has(paths, $"down_blocks.{b}."); b++)
        {
            for (int j = 0; j < Count(paths, $"down_blocks.{b}.resnets."); j++, input++)
            {
                _blocks[$"down_blocks.{b}.resnets.{j}"] = $"input_blocks.{input}.0";
                _blocks[$"down_blocks.{b}.attentions.{j}"] = $"input_blocks.{input}.1";
            }
            if (Has(paths, $"down_blocks.{b}.downsamplers.0.")) _blocks[$"down_blocks.{b}.downsamplers.0.conv"] = $"input_blocks.{input++}.0.op";
        }
        int output = 0;
        for (int b = 0; Has(paths, $"up_blocks.{b}."); b++)
        {
            int resnets = Count(paths, $"up_blocks.{b}.resnets.");
            bool attentions = Has(paths, $"up_blocks.{b}.attentions.");
            for (int j = 0; j < resnets; j++, output++)
            {
                _blocks[$"up_blocks.{b}.resnets.{j}"] = $"output_blocks.{output}.0";
                _blocks[$"up_blocks.{b}.attentions.{j}"] = $"output_blocks.{output}.1";
                if (j == resnets - 1 && Has(paths, $"up_blocks.{b}.upsamplers.0."))
                    _blocks[$"up_blocks.{b}.upsamplers.0.conv"] = $"output_blocks.{output}.{(attentions ? 2 : 1)}.conv";
            }
        }
    }

    /// <summary>The SGM path of a diffusers module path, or null when it has none.</summary>
    public string? ToSgm(string path)
    {
        var parts = path.Split('.');
        for (int n = Math.Min(parts.Length, 5); n >= 1; n--)
        {
            var head = string.Join('.', parts, 0, n);
            if (!_blocks.TryGetValue(head, out var block)) continue;
            if (n == parts.Length) return block;
            var rest = string.Join('.', parts, n, parts.Length - n);
            if (n >= 2 && parts[n - 2] == "resnets")
                return ResnetInner.TryGetValue(parts[n], out var inner) ? $"{block}.{inner}{(parts.Length > n + 1 ? "." + string.Join('.', parts, n + 1, parts.Length - n - 1) : "")}" : null;
            return $"{block}.{rest}";
        }
        return null;
    }

    private static bool Has(List<string> paths, string prefix) => paths.Any(p => p.StartsWith(prefix, StringComparison.Ordinal));

    private static int Count(List<string> paths, string prefix) =>
        paths.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p[prefix.Length..].Split('.')[0]).Distinct().Count();
}
