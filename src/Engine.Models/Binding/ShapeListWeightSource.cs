using Engine.Core;

namespace Engine.Models.Binding;

/// <summary>
/// A key to shape directory without data (for example a checkpoint manifest): enough to check that a
/// network built from a configuration binds every key with the right shape. Loading throws.
/// </summary>
public sealed class ShapeListWeightSource(string description, IReadOnlyDictionary<string, int[]> shapes) : IWeightSource
{
    /// <inheritdoc />
    public string Description { get; } = description;

    /// <inheritdoc />
    public IReadOnlyCollection<string> Keys => shapes.Keys.ToList();

    /// <inheritdoc />
    public int[] Shape(string key) => (int[])shapes[key].Clone();

    /// <inheritdoc />
    public Tensor Load(Device device, string key) =>
        throw new InvalidOperationException($"{Description} holds shapes only; tensor '{key}' has no data.");
}
