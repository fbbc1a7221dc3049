using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// transformers' <c>CLIPAttention</c> as CLIP's text encoder uses it: q/k/v/out projections with bias
/// (<c>q_proj</c>, <c>k_proj</c>, <c>v_proj</c>, <c>out_proj</c>) and causal self-attention, each
/// position attending to itself and the positions before it.
/// </summary>
/// <remarks>
/// <see cref="Device.Attention"/> has no mask, so the masked attention is composed from device ops:
/// per-head scores by a batched GEMM on the transposed projections, the causal mask added
/// (transformers' float32 minimum above the diagonal), softmax, and a second GEMM. Everything stays on
/// the device; the L x L scores are small for CLIP's 77 positions.
/// </remarks>
public sealed class CausalSelfAttention
{
    private readonly Linear _q, _k, _v, _out;
    private readonly DeviceTableCache<int> _masks = new();

    /// <summary>Declares the projections in <paramref name="scope"/> (the <c>self_attn</c> path).</summary>
    public CausalSelfAttention(ParameterScope scope, int dim, int heads)
    {
        if (heads < 1 || dim % heads != 0) throw new ArgumentException($"Attention '{scope.Path}': width {dim} is not divisible into {heads} heads.");
        Dim = dim;
        Heads = heads;
        _q = new Linear(scope, "q_proj", dim, dim);
        _k = new Linear(scope, "k_proj", dim, dim);
        _v = new Linear(scope, "v_proj", dim, dim);
        _out = new Linear(scope, "out_proj", dim, dim);
        scope.Own(_masks);
    }

    /// <summary>Width of the input and output.</summary>
    public int Dim { get; }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Applies the layer to x [B, L, D], returning a new tensor [B, L, D].</summary>
    public Tensor Forward(Tensor x)
    {
        var device = x.Device;
        int b = x.Dim(0), l = x.Dim(1), d = Dim / Heads, bh = b * Heads;
        // [B, L, H*d] transposed is [B, H*d, L] = per head [d, L]: the operands of both GEMMs without a permute.
        using var qT = Transposed(_q, x);
        using var kT = Transposed(_k, x);
        using var vT = Transposed(_v, x);
        using var scores = device.Allocate(bh, l, l);
        device.MatMul(qT.Reshape(bh, d, l), kT.Reshape(bh, d, l), scores, transposeA: true, alpha: 1f / MathF.Sqrt(d));
        device.Add(scores, Mask(device, l), scores);
        using var probabilities = device.Allocate(bh, l, l);
        device.Softmax(scores, probabilities);
        using var oT = device.Allocate(x.DType, b, Dim, l);
        device.MatMul(vT.Reshape(bh, d, l), probabilities, oT.Reshape(bh, d, l), transposeB: true);
        using var o = device.Allocate(x.DType, b, l, Dim);
        device.Transpose(oT, o);
        return _out.Forward(o);
    }

    private static Tensor Transposed(Linear projection, Tensor x)
    {
        using var y = projection.Forward(x);
        var t = x.Device.Allocate(y.DType, y.Dim(0), y.Dim(2), y.Dim(1));
        x.Device.Transpose(y, t);
        return t;
    }

    private Tensor Mask(Device device, int l) => _masks.Get(device, l, () =>
    {
        var mask = new float[l * l];
        for (int i = 0; i < l; i++)
            for (int j = i + 1; j < l; j++) mask[i * l + j] = float.MinValue;
        return (mask, [l, l]);
    });
}
