using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>PixArtAlphaTextProjection</c>: <c>linear_2(act(linear_1(x)))</c> with SiLU or
/// GELU-tanh, the activation fused into the first GEMM.
/// </summary>
public sealed class PixArtAlphaTextProjection
{
    private readonly Linear _linear1, _linear2;
    private readonly Activation _activation;

    /// <summary>Declares <c>linear_1</c> and <c>linear_2</c> in <paramref name="scope"/>; <paramref name="activation"/> is "silu" or "gelu_tanh".</summary>
    public PixArtAlphaTextProjection(ParameterScope scope, int inFeatures, int hiddenSize, int? outFeatures = null, string activation = "gelu_tanh")
    {
        _activation = activation switch
        {
            "silu" => Activation.SiLU,
            "gelu_tanh" => Activation.GeluTanh,
            _ => throw new ArgumentException($"PixArtAlphaTextProjection '{scope.Path}': activation '{activation}' is not supported; supported: silu, gelu_tanh."),
        };
        _linear1 = new Linear(scope, "linear_1", inFeatures, hiddenSize);
        _linear2 = new Linear(scope, "linear_2", hiddenSize, outFeatures ?? hiddenSize);
    }

    /// <summary>Input width.</summary>
    public int InFeatures => _linear1.In;

    /// <summary>Projects x [..., in] into a new tensor [..., out].</summary>
    public Tensor Forward(Tensor x)
    {
        using var h = _linear1.Forward(x, _activation);
        return _linear2.Forward(h);
    }
}
