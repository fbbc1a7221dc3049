using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>torch.nn.Linear: y = x W^T + b with weight [out, in], optionally with a fused activation.</summary>
public sealed class Linear
{
    /// <summary>
    /// Declares <c>name.weight</c> (and <c>name.bias</c>) in <paramref name="parent"/>;
    /// <paramref name="legacyName"/> is an older name of the same module accepted at load time.
    /// </summary>
    public Linear(ParameterScope parent, string name, int inFeatures, int outFeatures, bool bias = true, string? legacyName = null)
    {
        In = inFeatures;
        Out = outFeatures;
        Weight = parent.Add($"{name}.weight", [outFeatures, inFeatures], legacyName is null ? [] : [$"{legacyName}.weight"]);
        Weight.AllowsHalfStorage = true;
        Bias = bias ? parent.Add($"{name}.bias", [outFeatures], legacyName is null ? [] : [$"{legacyName}.bias"]) : null;
    }

    /// <summary>Input features.</summary>
    public int In { get; }

    /// <summary>Output features.</summary>
    public int Out { get; }

    /// <summary>[out, in].</summary>
    public Parameter Weight { get; }

    /// <summary>[out] or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>Applies the layer to x [..., in], returning a new tensor [..., out].</summary>
    public Tensor Forward(Tensor x, Activation activation = Activation.None) => ForwardChunk(x, 0, Out, activation);

    /// <summary>
    /// Computes only output features [start, start + count) (a chunk of the output, as torch's
    /// <c>chunk</c> after the layer) through a row slice of the weight: no copy, no strided split.
    /// </summary>
    public Tensor ForwardChunk(Tensor x, int start, int count, Activation activation = Activation.None)
    {
        var shape = x.ShapeArray();
        shape[^1] = count;
        var y = x.Device.Allocate(x.DType, shape);
        var w = count == Out ? Weight.Tensor : Weight.Tensor.Slice(start, count);
        var b = Bias is null ? null : count == Out ? Bias.Tensor : Bias.Tensor.Slice(start, count);
        x.Device.Linear(x, w, b, y, activation);
        return y;
    }
}
