using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>Attention</c> with <c>JointAttnProcessor2_0</c> (SD3 MM-DiT): image tokens x use
/// <c>to_q/to_k/to_v</c>, context tokens use <c>add_q_proj/add_k_proj/add_v_proj</c>; both attend over
/// the joint sequence [x; context] and the result is split back, through <c>to_out.0</c> and (unless
/// <c>context_pre_only</c>) <c>to_add_out</c>. Attention rows are independent, so each stream's queries
/// attend to the joint keys and values in their own call and no split is needed; in the
/// context-pre-only (last) block the context output is discarded by diffusers and not computed.
/// Optional per-head q/k normalisation (<c>rms_norm</c> with weights, <c>fp32_layer_norm</c> without).
/// With identity attention (perturbed-attention guidance) every token of the joint sequence attends to itself
/// alone: the image stream outputs <c>to_out(to_v(x))</c>, the context stream <c>to_add_out(add_v_proj(context))</c>.
/// </summary>
public sealed class JointAttention : ISelfAttention
{
    private readonly Linear _toQ, _toK, _toV, _addQ, _addK, _addV, _toOut;
    private readonly Linear? _toAddOut;
    private readonly Action<Tensor, Tensor>? _normQ, _normK, _normAddedQ, _normAddedK;
    private readonly int _heads, _headDim;

    /// <summary>The q/k normalisations supported (null: none).</summary>
    public static readonly string[] SupportedQkNorms = ["rms_norm", "fp32_layer_norm"];

    /// <summary>Declares the parameters in <paramref name="scope"/> (the <c>attn</c> module's path).</summary>
    public JointAttention(ParameterScope scope, int dim, int heads, int headDim, bool contextPreOnly, string? qkNorm, float eps = 1e-6f)
    {
        if (heads < 1 || headDim < 1) throw new ArgumentException($"JointAttention '{scope.Path}': heads {heads} and head dim {headDim} must be positive.");
        _heads = heads;
        _headDim = headDim;
        Name = scope.Path;
        ContextPreOnly = contextPreOnly;
        int inner = heads * headDim;
        _toQ = new Linear(scope, "to_q", dim, inner);
        _toK = new Linear(scope, "to_k", dim, inner);
        _toV = new Linear(scope, "to_v", dim, inner);
        if (qkNorm is not null)
        {
            if (!SupportedQkNorms.Contains(qkNorm))
                throw new ArgumentException($"JointAttention '{scope.Path}': qk_norm '{qkNorm}' is not supported; supported: null, {string.Join(", ", SupportedQkNorms)}.");
            _normQ = HeadNorm(scope, "norm_q", qkNorm, eps);
            _normK = HeadNorm(scope, "norm_k", qkNorm, eps);
        }
        _addK = new Linear(scope, "add_k_proj", dim, inner);
        _addV = new Linear(scope, "add_v_proj", dim, inner);
        _addQ = new Linear(scope, "add_q_proj", dim, inner);
        _toOut = new Linear(scope, "to_out.0", inner, dim);
        if (!contextPreOnly) _toAddOut = new Linear(scope, "to_add_out", inner, dim);
        if (qkNorm is not null)
        {
            _normAddedQ = HeadNorm(scope, "norm_added_q", qkNorm, eps);
            _normAddedK = HeadNorm(scope, "norm_added_k", qkNorm, eps);
        }
    }

    /// <summary>Whether the context stream ends here (no context output).</summary>
    public bool ContextPreOnly { get; }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public bool IdentityAttention { get; set; }

    /// <inheritdoc />
    public (int Start, int Count)? IdentityRows { get; set; }

    /// <summary>
    /// Attends x [B, Lx, D] and context [B, Lc, D] jointly. Returns new tensors: the x output and the
    /// context output (null when <see cref="ContextPreOnly"/>).
    /// </summary>
    public (Tensor X, Tensor? Context) Forward(Tensor x, Tensor context)
    {
        var device = x.Device;
        int b = x.Dim(0), lx = x.Dim(1), lc = context.Dim(1), inner = _heads * _headDim;
        using var v = _toV.Forward(x);
        using var cv = _addV.Forward(context);
        if (IdentityAttention) return Outputs(v, cv);
        var rows = IdentityRows is { Count: > 0 } r ? r : default;
        if (rows.Count > 0 && (rows.Start < 0 || rows.Start + rows.Count > b))
            throw new ArgumentException($"JointAttention '{Name}': identity rows [{rows.Start}, {rows.Start + rows.Count}) are outside the batch of {b}.");
        float scale = 1f / MathF.Sqrt(_headDim);
        using var keys = device.Allocate(x.DType, b, lx + lc, inner);
        using var values = device.Allocate(x.DType, b, lx + lc, inner);
        using (var k = Project(_toK, _normK, x))
        using (var ck = Project(_addK, _normAddedK, context))
            device.ConcatChannels(k, ck, keys);
        device.ConcatChannels(v, cv, values);

        using var o = device.Allocate(x.DType, b, lx, inner);
        using (var q = Project(_toQ, _normQ, x))
            device.Attention(q, keys, values, o, _heads, scale);
        // Perturbed rows: each token's own value, as if the map were the identity.
        if (rows.Count > 0) device.Copy(v.Slice(rows.Start, rows.Count), o.Slice(rows.Start, rows.Count));
        if (_toAddOut is null) return (_toOut.Forward(o), null);
        using var co = device.Allocate(x.DType, b, lc, inner);
        using (var cq = Project(_addQ, _normAddedQ, context))
            device.Attention(cq, keys, values, co, _heads, scale);
        if (rows.Count > 0) device.Copy(cv.Slice(rows.Start, rows.Count), co.Slice(rows.Start, rows.Count));
        return Outputs(o, co);
    }

    /// <summary>The output projections of attention results o (image tokens) and co (context tokens).</summary>
    private (Tensor X, Tensor? Context) Outputs(Tensor o, Tensor co)
    {
        var xOut = _toOut.Forward(o);
        if (_toAddOut is null) return (xOut, null);
        try { return (xOut, _toAddOut.Forward(co)); }
        catch
        {
            xOut.Dispose();
            throw;
        }
    }

    /// <summary>A projection [B, L, H*d], normalised per head when the layer has q/k norms.</summary>
    private Tensor Project(Linear linear, Action<Tensor, Tensor>? norm, Tensor input)
    {
        var p = linear.Forward(input);
        if (norm is null) return p;
        using (p)
        {
            var y = p.Device.Allocate(p.DType, p.ShapeArray());
            int rows = p.Dim(0) * p.Dim(1) * _heads;
            try { norm(p.Reshape(rows, _headDim), y.Reshape(rows, _headDim)); }
            catch { y.Dispose(); throw; }
            return y;
        }
    }

    private Action<Tensor, Tensor> HeadNorm(ParameterScope scope, string name, string kind, float eps)
    {
        if (kind == "rms_norm")
        {
            var rms = new RmsNorm(scope, name, _headDim, eps);
            return rms.Forward;
        }
        return (x, y) => x.Device.LayerNorm(x, null, null, y, eps);
    }
}
