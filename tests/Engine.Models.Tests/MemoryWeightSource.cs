using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Tests;

/// <summary>Weights held in memory as (shape, values) per key, for binding hand-built modules.</summary>
public sealed class MemoryWeightSource(IReadOnlyDictionary<string, (int[] Shape, float[] Data)> tensors) : IWeightSource
{
    public string Description => "in-memory weights";

    public IReadOnlyCollection<string> Keys => tensors.Keys.ToList();

    public int[] Shape(string key) => (int[])tensors[key].Shape.Clone();

    public Tensor Load(Device device, string key) => device.Upload(tensors[key].Data, tensors[key].Shape);
}
