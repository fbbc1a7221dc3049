using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>AdaLayerNormContinuous</c> with a layer norm without affine parameters (as SD3 uses
/// it): e = linear(silu(c)) split into scale then shift (that order), and
/// y = LayerNorm(x) * (1 + scale) + shift per sample.
/// </summary>
public sealed class AdaLayerNormContinuous
{
    private readonly Linear _linear;
    private readonly int _dim;
    private readonly float _eps;

    /// <summary>Declares <c>linear</c> [2 dim, conditioningDim] in <paramref name="scope"/>.</summary>
    public AdaLayerNormContinuous(ParameterScope scope, int dim, int conditioningDim, float eps, bool bias = true)
    {
        _dim = dim;
        _eps = eps;
        _linear = new Linear(scope, "linear", conditioningDim, 2 * dim, bias);
    }

    /// <summary>Normalises x [B, L, D] into a new tensor, given silu(c) [B, conditioningDim] already computed.</summary>
    public Tensor ForwardActivated(Tensor x, Tensor activatedConditioning)
    {
        var device = x.Device;
        using var scale = _linear.ForwardChunk(activatedConditioning, 0, _dim);
        using var shift = _linear.ForwardChunk(activatedConditioning, _dim, _dim);
        var y = device.Allocate(x.DType, x.ShapeArray());
        device.LayerNorm(x, null, null, y, _eps);
        device.Modulate(y, shift, scale, y);
        return y;
    }
}
