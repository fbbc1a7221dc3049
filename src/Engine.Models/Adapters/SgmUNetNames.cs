using Engine.Models.Checkpoints;

namespace Engine.Models.Adapters;

/// <summary>
/// The original (LDM / SGM) module paths of a diffusers UNet2DConditionModel, which kohya's SDXL LoRA files
/// use (<c>input_blocks.N.0</c> / <c>.1</c>, <c>middle_block.0/1/2</c>, <c>output_blocks.N.0</c> / <c>.1</c>, ResNet
/// parts as <c>in_layers.2</c> and so on). The names and the block numbering are <see cref="UNetBlockNames"/>'; this
/// type reads the length of every block from the model's own modules, so any layers_per_block works, one per block included.
/// </summary>
public sealed class SgmUNetNames
{
    private readonly List<int> _downResnets = [];
    private readonly List<int> _upResnets = [];
    private readonly List<bool> _upAttentions = [];

    /// <summary>Reads the block lengths from the diffusers module paths of one UNet (<c>down_blocks.0.resnets.0.conv1</c>, ...).</summary>
    public SgmUNetNames(IEnumerable<string> modulePaths)
    {
        var paths = modulePaths.ToList();
        for (int b = 0; Has(paths, $"down_blocks.{b}."); b++) _downResnets.Add(Count(paths, $"down_blocks.{b}.resnets."));
        for (int b = 0; Has(paths, $"up_blocks.{b}."); b++)
        {
            _upResnets.Add(Count(paths, $"up_blocks.{b}.resnets."));
            _upAttentions.Add(Has(paths, $"up_blocks.{b}.attentions."));
        }
    }

    /// <summary>The SGM path of a diffusers module path, or null when it has none.</summary>
    public string? ToSgm(string path) => UNetBlockNames.ToOriginal(path,
        b => b < _downResnets.Count ? _downResnets[b] : 0, b => b < _upResnets.Count ? _upResnets[b] : 0, b => b < _upAttentions.Count && _upAttentions[b]);

    private static bool Has(List<string> paths, string prefix) => paths.Any(p => p.StartsWith(prefix, StringComparison.Ordinal));

    private static int Count(List<string> paths, string prefix) =>
        paths.Where(p => p.StartsWith(prefix, StringComparison.Ordinal)).Select(p => p[prefix.Length..].Split('.')[0]).Distinct().Count();
}
