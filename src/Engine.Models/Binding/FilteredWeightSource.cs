using Engine.Core;

namespace Engine.Models.Binding;

/// <summary>
/// A weight source with some stored keys hidden: buffers that checkpoints carry but that are not
/// weights (transformers' saved <c>position_ids</c>), so strict binding does not report them.
/// </summary>
public sealed class FilteredWeightSource(IWeightSource inner, IReadOnlyCollection<string> hidden) : IWeightSource
{
    /// <inheritdoc />
    public string Description => inner.Description;

    /// <inheritdoc />
    public IReadOnlyCollection<string> Keys { get; } = inner.Keys.Where(k => !hidden.Contains(k)).ToList();

    /// <inheritdoc />
    public int[] Shape(string key) => inner.Shape(key);

    /// <inheritdoc />
    public Tensor Load(Device device, string key) => inner.Load(device, key);

    /// <inheritdoc />
    public Tensor Load(Device device, string key, DType dtype) => inner.Load(device, key, dtype);
}
