using Engine.Models.Binding;
using Engine.Models.Networks;

namespace Engine.Models.Adapters;

/// <summary>
/// The modules a LoRA file may name in one loaded pipeline, by every name the supported layouts use: the
/// diffusers layout's <c>COMPONENT.PATH</c> (<c>unet.</c>, <c>text_encoder.</c>, <c>text_encoder_2.</c>), kohya's
/// <c>lora_unet_</c> / <c>lora_te_</c> / <c>lora_te1_</c> / <c>lora_te2_</c> + the path with every '.' replaced by '_',
/// and for a UNet also kohya's SDXL names (the SGM path, see <see cref="SgmUNetNames"/>). The map is built
/// from the model's own modules to the file's names, because the '_' spelling cannot be read back.
/// </summary>
public sealed class LoraTargets
{
    private readonly Dictionary<string, (string Module, Parameter Weight)> _byName = new(StringComparer.Ordinal);

    /// <summary>Indexes the Linear and Conv2d weights of <paramref name="components"/> (name: unet, text_encoder, text_encoder_2, transformer).</summary>
    public LoraTargets(IReadOnlyList<(string Component, Network Network)> components)
    {
        foreach (var (component, network) in components)
        {
            var weights = network.Parameters.Where(p => p.AllowsHalfStorage && p.Key.EndsWith(".weight", StringComparison.Ordinal) && p.Shape.Length is 2 or 4).ToList();
            var paths = weights.Select(p => p.Key[..^".weight".Length]).ToList();
            var sgm = component == "unet" ? new SgmUNetNames(paths) : null;
            string[] kohyaPrefixes = component switch
            {
                "unet" => ["lora_unet_"],
                "text_encoder" => ["lora_te_", "lora_te1_"],
                "text_encoder_2" => ["lora_te2_"],
                _ => [],
            };
            for (int i = 0; i < weights.Count; i++)
            {
                string module = $"{component}.{paths[i]}";
                var target = (module, weights[i]);
                _byName.TryAdd(module, target);
                foreach (var prefix in kohyaPrefixes)
                {
                    _byName.TryAdd(prefix + paths[i].Replace('.', '_'), target);
                    if (sgm?.ToSgm(paths[i]) is { } original) _byName.TryAdd(prefix + original.Replace('.', '_'), target);
                }
            }
        }
    }

    /// <summary>The module a file's key prefix names (its diffusers path, e.g. <c>unet.down_blocks.0.attentions.0.proj_in</c>) and its weight.</summary>
    public bool TryFind(string name, out string module, out Parameter weight)
    {
        if (_byName.TryGetValue(name, out var hit)) { (module, weight) = hit; return true; }
        (module, weight) = ("", null!);
        return false;
    }
}
