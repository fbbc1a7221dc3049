using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>Transformer2DModel</c> on continuous input, as used inside UNet2DConditionModel:
/// group norm (eps 1e-6), <c>proj_in</c> (1x1 conv for SD 1.x, linear for SD 2.x
/// <c>use_linear_projection</c>), a stack of <see cref="BasicTransformerBlock"/> over the H*W tokens,
/// <c>proj_out</c> back to channels, plus the input.
/// </summary>
public sealed class SpatialTransformer : ISpatialMixer
{
    private readonly GroupNorm _norm;
    private readonly Conv2d? _projInConv, _projOutConv;
    private readonly Linear? _projInLinear, _projOutLinear;
    private readonly int _inner;

    /// <summary>Declares the parameters in <paramref name="scope"/>.</summary>
    public SpatialTransformer(ParameterScope scope, int heads, int headDim, int inChannels, int numLayers, int? crossAttentionDim,
        int normGroups, bool useLinearProjection, bool onlyCrossAttention)
    {
        _inner = heads * headDim;
        _norm = new GroupNorm(scope, "norm", normGroups, inChannels, 1e-6f);
        if (useLinearProjection) _projInLinear = new Linear(scope, "proj_in", inChannels, _inner);
        else _projInConv = new Conv2d(scope, "proj_in", inChannels, _inner, 1);
        Blocks = Enumerable.Range(0, numLayers)
            .Select(i => new BasicTransformerBlock(scope.Sub("transformer_blocks", i), _inner, heads, headDim, crossAttentionDim, onlyCrossAttention: onlyCrossAttention))
            .ToArray();
        if (useLinearProjection) _projOutLinear = new Linear(scope, "proj_out", _inner, inChannels);
        else _projOutConv = new Conv2d(scope, "proj_out", _inner, inChannels, 1);
    }

    /// <summary>The transformer blocks.</summary>
    public IReadOnlyList<BasicTransformerBlock> Blocks { get; }

    /// <inheritdoc />
    public Tensor Mix(Tensor x, Tensor? context) => Forward(x, context);

    /// <inheritdoc />
    public IEnumerable<Attention> SelfAttentions => Blocks.Select(b => b.Attn1).Where(a => !a.IsCrossAttention);

    /// <summary>Applies the module to x [B, C, H, W] with context [B, L, Dc]; returns a new tensor.</summary>
    public Tensor Forward(Tensor x, Tensor? context)
    {
        var device = x.Device;
        int b = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
        using var normed = _norm.Forward(x);
        Tensor tokens = device.Allocate(x.DType, b, hw, _inner);
        try
        {
            if (_projInConv is not null)
            {
                using var p = _projInConv.Forward(normed);
                device.Transpose(p.Reshape(b, _inner, hw), tokens);
            }
            else
            {
                using var t = device.Allocate(x.DType, b, hw, c);
                device.Transpose(normed.Reshape(b, c, hw), t);
                tokens.Dispose();
                tokens = _projInLinear!.Forward(t);
            }
            foreach (var block in Blocks) block.Forward(tokens, context);
            var y = device.Allocate(x.DType, x.ShapeArray());
            if (_projOutConv is not null)
            {
                using var img = device.Allocate(x.DType, b, _inner, x.Dim(2), x.Dim(3));
                device.Transpose(tokens, img.Reshape(b, _inner, hw));
                using var p = _projOutConv.Forward(img);
                device.Add(p, x, y);
            }
            else
            {
                using var p = _projOutLinear!.Forward(tokens);
                device.Transpose(p, y.Reshape(b, c, hw));
                device.Add(y, x, y);
            }
            return y;
        }
        finally { tokens.Dispose(); }
    }
}
