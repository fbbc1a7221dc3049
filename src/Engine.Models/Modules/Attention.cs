using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>Attention</c> with the classic processor: q/k/v projections, multi-head scaled
/// dot-product attention (always float32, so <c>upcast_softmax</c>/<c>upcast_attention</c> change
/// nothing), <c>to_out.0</c>, then optional residual and <c>rescale_output_factor</c>. A 4-D input
/// [B, C, H, W] is the spatial form of UNet2DModel and VAE blocks: optional group norm, attention over
/// the H*W positions, back to [B, C, H, W]. Checkpoints of that "deprecated attention block" may name
/// the projections <c>query/key/value/proj_attn</c>; those load too.
/// </summary>
public sealed class Attention : ISpatialMixer, ISelfAttention
{
    private readonly Linear _toQ, _toK, _toV, _toOut;
    private readonly GroupNorm? _groupNorm;

    /// <summary>Declares the parameters in <paramref name="scope"/> (the attention module's own path).</summary>
    public Attention(ParameterScope scope, int queryDim, int heads, int dimHead, int? crossAttentionDim = null, bool bias = false,
        bool outBias = true, int? normGroups = null, float eps = 1e-5f, bool residualConnection = false, float rescaleOutputFactor = 1f,
        bool legacyNames = false)
    {
        if (heads < 1 || dimHead < 1) throw new ArgumentException($"Attention '{scope.Path}': heads {heads} and head dim {dimHead} must be positive.");
        Name = scope.Path;
        QueryDim = queryDim;
        Heads = heads;
        DimHead = dimHead;
        IsCrossAttention = crossAttentionDim is not null;
        ResidualConnection = residualConnection;
        RescaleOutputFactor = rescaleOutputFactor;
        int inner = heads * dimHead, kvDim = crossAttentionDim ?? queryDim;
        if (normGroups is int g) _groupNorm = new GroupNorm(scope, "group_norm", g, queryDim, eps);
        _toQ = new Linear(scope, "to_q", queryDim, inner, bias, legacyNames ? "query" : null);
        _toK = new Linear(scope, "to_k", kvDim, inner, bias, legacyNames ? "key" : null);
        _toV = new Linear(scope, "to_v", kvDim, inner, bias, legacyNames ? "value" : null);
        _toOut = new Linear(scope, "to_out.0", inner, queryDim, outBias, legacyNames ? "proj_attn" : null);
    }

    /// <summary>The module path, e.g. <c>mid_block.attentions.0</c>.</summary>
    public string Name { get; }

    /// <summary>Query (and output) width.</summary>
    public int QueryDim { get; }

    /// <summary>Number of heads.</summary>
    public int Heads { get; }

    /// <summary>Width of one head.</summary>
    public int DimHead { get; }

    /// <summary>Whether keys and values come from a separate context (encoder hidden states).</summary>
    public bool IsCrossAttention { get; }

    /// <summary>Whether the input is added to the output.</summary>
    public bool ResidualConnection { get; }

    /// <summary>The output is divided by this factor.</summary>
    public float RescaleOutputFactor { get; }

    /// <summary>
    /// When set, the attention map is replaced by the identity: the layer outputs its value
    /// projection (through <c>to_out</c>, residual and rescale as usual). Used by perturbed-attention
    /// guidance; only meaningful for self-attention. Off by default.
    /// </summary>
    public bool IdentityAttention { get; set; }

    /// <summary>
    /// Batch rows [Start, Start + Count) that use identity attention (their value projection) while the
    /// other rows attend normally: the perturbed branch of perturbed-attention guidance inside one
    /// batched forward. Null (the default) leaves every row to <see cref="IdentityAttention"/>.
    /// </summary>
    public (int Start, int Count)? IdentityRows { get; set; }

    /// <summary>
    /// Applies the layer. x is [B, L, D] (tokens) or [B, D, H, W] (spatial); context [B, Lc, Dc] for
    /// cross-attention, else null (self-attention). Returns a new tensor shaped like x.
    /// </summary>
    public Tensor Forward(Tensor x, Tensor? context = null)
    {
        var device = x.Device;
        if (IsCrossAttention && context is null) throw new ArgumentException($"Attention '{Name}' is a cross-attention layer and needs encoder hidden states.");
        if (x.Rank == 4)
        {
            int b = x.Dim(0), c = x.Dim(1), hw = x.Dim(2) * x.Dim(3);
            using var normed = _groupNorm?.Forward(x);
            var source = (normed ?? x).Reshape(b, c, hw);
            using var tokens = device.Allocate(x.DType, b, hw, c);
            device.Transpose(source, tokens);
            using var mixed = Mix(tokens, context);
            var spatial = device.Allocate(x.DType, x.ShapeArray());
            device.Transpose(mixed, spatial.Reshape(b, c, hw));
            Finish(x, spatial);
            return spatial;
        }
        if (x.Rank != 3) throw new ArgumentException($"Attention '{Name}' takes [B, L, D] or [B, C, H, W], got {x}.");
        if (_groupNorm is not null)
        {
            using var t = device.Allocate(x.DType, x.Dim(0), x.Dim(2), x.Dim(1));
            device.Transpose(x, t);
            using var n = _groupNorm.Forward(t);
            using var back = device.Allocate(x.DType, x.ShapeArray());
            device.Transpose(n, back);
            var y3 = Mix(back, context);
            Finish(x, y3);
            return y3;
        }
        var y = Mix(x, context);
        Finish(x, y);
        return y;
    }

    /// <inheritdoc />
    Tensor ISpatialMixer.Mix(Tensor x, Tensor? context) => Forward(x, IsCrossAttention ? context : null);

    /// <inheritdoc />
    IEnumerable<Attention> ISpatialMixer.SelfAttentions => IsCrossAttention ? [] : [this];

    private Tensor Mix(Tensor tokens, Tensor? context)
    {
        var device = tokens.Device;
        var kv = context ?? tokens;
        using var v = _toV.Forward(kv);
        if (IdentityAttention)
        {
            if (context is not null) throw new InvalidOperationException($"Attention '{Name}': identity attention applies to self-attention only.");
            return _toOut.Forward(v);
        }
        using var q = _toQ.Forward(tokens);
        using var k = _toK.Forward(kv);
        using var o = device.Allocate(q.DType, q.ShapeArray());
        device.Attention(q, k, v, o, Heads, 1f / MathF.Sqrt(DimHead));
        if (IdentityRows is { Count: > 0 } rows && context is null)
        {
            if (rows.Start < 0 || rows.Start + rows.Count > o.Dim(0))
                throw new ArgumentException($"Attention '{Name}': identity rows [{rows.Start}, {rows.Start + rows.Count}) are outside the batch of {o.Dim(0)}.");
            device.Copy(v.Slice(rows.Start, rows.Count), o.Slice(rows.Start, rows.Count));
        }
        return _toOut.Forward(o);
    }

    private void Finish(Tensor input, Tensor y)
    {
        if (ResidualConnection) y.Device.Add(y, input, y);
        if (RescaleOutputFactor != 1f) y.Device.Affine(y, y, 1f / RescaleOutputFactor, 0f);
    }
}
