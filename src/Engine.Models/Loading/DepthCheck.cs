using System.Text.Json;
using System.Text.RegularExpressions;
using Engine.Models.Binding;

namespace Engine.Models.Loading;

/// <summary>
/// Compares the depth fields of a configuration (layers per block, number of transformer blocks) with
/// the blocks its weights file holds, from the tensor names alone, before any module is built: a
/// configuration asking for more layers than the file has cannot bind, and is refused naming the field.
/// </summary>
public static partial class DepthCheck
{
    // Per class: the field, and the tensor names whose captured index counts that field's layers.
    private static readonly Dictionary<string, (string Field, Regex Layer)[]> Rules = new(StringComparer.Ordinal)
    {
        ["UNet2DModel"] = [("layers_per_block", DownResnet())],
        ["UNet2DConditionModel"] = [("layers_per_block", DownResnet()), ("transformer_layers_per_block", UNetTransformerBlock())],
        ["AutoencoderKL"] = [("layers_per_block", EncoderResnet())],
        ["DiTTransformer2DModel"] = [("num_layers", TransformerBlock())],
        ["Transformer2DModel"] = [("num_layers", TransformerBlock())],
        ["SD3Transformer2DModel"] = [("num_layers", TransformerBlock())],
    };

    /// <summary>
    /// Throws a <see cref="ModelLoadException"/> naming the field when a depth field given in
    /// <paramref name="config"/> exceeds the layers <paramref name="weights"/> holds. Fields left out
    /// take the class default, which the parameter limit of the build covers.
    /// </summary>
    public static void Check(ModelConfig config, IWeightSource weights)
    {
        if (!Rules.TryGetValue(config.ClassName, out var rules)) return;
        foreach (var (field, layer) in rules)
        {
            if (!config.Root.TryGetProperty(field, out var value) || value.ValueKind is not (JsonValueKind.Number or JsonValueKind.Array)) continue;
            int asked = Deepest(config, field, value);
            int held = Layers(weights, layer);
            // A file without any such block (a UNet without attention) leaves the field unused.
            if (held > 0 && asked > held)
                throw new ModelLoadException($"{config.Path}: {config.ClassName} setting '{field}' = {asked} cannot match {weights.Description}, which holds {held} (expected 1 to {held}).");
        }
    }

    private static int Deepest(ModelConfig config, string field, JsonElement value) =>
        value.ValueKind == JsonValueKind.Number ? config.Int(field, 0) : config.IntList(field, []).DefaultIfEmpty(0).Max();

    private static int Layers(IWeightSource weights, Regex layer)
    {
        int count = 0;
        foreach (var key in weights.Keys)
        {
            var m = layer.Match(key);
            if (m.Success && int.TryParse(m.Groups[1].ValueSpan, out int index) && index >= count) count = index + 1;
        }
        return count;
    }

    [GeneratedRegex(@"^down_blocks\.\d+\.resnets\.(\d+)\.")]
    private static partial Regex DownResnet();

    [GeneratedRegex(@"^encoder\.down_blocks\.\d+\.resnets\.(\d+)\.")]
    private static partial Regex EncoderResnet();

    [GeneratedRegex(@"^(?:down_blocks|mid_block|up_blocks)\..*\.transformer_blocks\.(\d+)\.")]
    private static partial Regex UNetTransformerBlock();

    [GeneratedRegex(@"^transformer_blocks\.(\d+)\.")]
    private static partial Regex TransformerBlock();
}
