using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Tests;

/// <summary>The tensors of an op fixture named <c>w.&lt;state_dict key&gt;</c>, exposed under their state_dict keys.</summary>
public sealed class PrefixedWeightSource(SafetensorsWeightSource inner, string prefix) : IWeightSource
{
    public string Description => inner.Description;

    public IReadOnlyCollection<string> Keys { get; } = inner.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).Select(k => k[prefix.Length..]).ToList();

    public int[] Shape(string key) => inner.Shape(prefix + key);

    public Tensor Load(Device device, string key) => inner.Load(device, prefix + key);
}
