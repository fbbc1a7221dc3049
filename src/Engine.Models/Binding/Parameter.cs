using Engine.Core;

namespace Engine.Models.Binding;

/// <summary>
/// One learnable tensor of a network, named by its diffusers <c>state_dict</c> key. Networks declare
/// their parameters (key, shape, legacy aliases) when they are built from a configuration, before
/// any weight exists, so a binding can be checked against a key/shape list without data.
/// </summary>
public sealed class Parameter
{
    internal Parameter(string key, int[] shape, string[] aliases)
    {
        Key = key;
        Shape = shape;
        Aliases = aliases;
    }

    /// <summary>The state_dict key, e.g. <c>down_blocks.0.resnets.0.conv1.weight</c>.</summary>
    public string Key { get; }

    /// <summary>The shape the network expects.</summary>
    public int[] Shape { get; }

    /// <summary>Older names of the same tensor accepted when <see cref="Key"/> is absent (e.g. <c>query.weight</c>).</summary>
    public IReadOnlyList<string> Aliases { get; }

    /// <summary>
    /// True for the weight matrices of Linear and Conv2d layers, which GEMM and convolution read in any
    /// storage type: they may be bound as F16 or BF16 (see <see cref="WeightBinder.Bind"/>). Every other
    /// parameter (biases, norms, embedding tables) stays float32.
    /// </summary>
    public bool AllowsHalfStorage { get; internal set; }

    /// <summary>The bound device tensor (float32, or F16 / BF16 where <see cref="AllowsHalfStorage"/>), or null before binding.</summary>
    public Tensor? Value { get; internal set; }

    /// <summary>The bound tensor; throws when the network has not been loaded.</summary>
    public Tensor Tensor => Value ?? throw new InvalidOperationException($"Parameter '{Key}' has no weights: the network was built without loading them.");

    /// <inheritdoc />
    public override string ToString() => $"{Key} {Core.Tensor.ShapeString(Shape)}";
}
