using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>FeedForward</c>: <c>net.0</c> (GELU, GELU-tanh or GEGLU projection), <c>net.2</c> linear.
/// GELU variants are fused into the first GEMM; GEGLU is the device's LinearGeglu (value and gate halves of the
/// doubled projection, fused on the CPU so that projection is never stored whole).
/// </summary>
public sealed class FeedForward
{
    private readonly Linear _proj, _out;
    private readonly string _activation;

    /// <summary>The activation names this module supports.</summary>
    public static readonly string[] SupportedActivations = ["gelu", "gelu-approximate", "geglu"];

    /// <summary>Declares <c>net.0.proj</c> and <c>net.2</c> in <paramref name="scope"/>.</summary>
    public FeedForward(ParameterScope scope, int dim, string activation, int mult = 4, int? innerDim = null, int? dimOut = null, bool bias = true)
    {
        if (!SupportedActivations.Contains(activation))
            throw new ArgumentException($"FeedForward '{scope.Path}': activation '{activation}' is not supported; supported: {string.Join(", ", SupportedActivations)}.");
        _activation = activation;
        int inner = innerDim ?? dim * mult;
        _proj = new Linear(scope, "net.0.proj", dim, activation == "geglu" ? 2 * inner : inner, bias);
        _out = new Linear(scope, "net.2", inner, dimOut ?? dim, bias);
    }

    /// <summary>Applies the block to x [..., dim], returning a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        if (_activation == "geglu")
        {
            var shape = x.ShapeArray();
            shape[^1] = _proj.Out / 2;
            using var g = x.Device.Allocate(x.DType, shape);
            x.Device.LinearGeglu(x, _proj.Weight.Tensor, _proj.Bias?.Tensor, g);
            return _out.Forward(g);
        }
        using var a = _proj.Forward(x, _activation == "gelu" ? Activation.GeluErf : Activation.GeluTanh);
        return _out.Forward(a);
    }
}
