using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>AdaLayerNormZero</c>: e = linear(silu(emb)) split into six [B, D] chunks
/// (shift/scale/gate for attention, then for the MLP); returns LayerNorm(x, no affine, eps 1e-6)
/// modulated by the first shift and scale, and the other chunks. With <c>num_embeddings</c> (DiT) the
/// layer owns its embedding <c>emb</c> (timestep + label); without it (SD3) the caller passes the
/// conditioning. Each chunk is its own GEMM over a weight row slice, so nothing is split on the device.
/// </summary>
public sealed class AdaLayerNormZero
{
    private readonly CombinedTimestepLabelEmbeddings? _emb;
    private readonly Linear _linear;
    private readonly int _dim;

    /// <summary>Declares <c>linear</c> and, when <paramref name="numEmbeddings"/> is given, <c>emb.*</c> in <paramref name="scope"/>.</summary>
    public AdaLayerNormZero(ParameterScope scope, int dim, int? numEmbeddings)
    {
        _dim = dim;
        if (numEmbeddings is int n) _emb = new CombinedTimestepLabelEmbeddings(scope.Sub("emb"), n, dim);
        _linear = new Linear(scope, "linear", dim, 6 * dim);
    }

    /// <summary>The conditioning embedding (timestep + label), or null when the caller supplies the conditioning.</summary>
    public CombinedTimestepLabelEmbeddings? Embedding => _emb;

    /// <summary>The outputs of one call; the caller disposes them.</summary>
    public sealed record Result(Tensor Normed, Tensor GateMsa, Tensor ShiftMlp, Tensor ScaleMlp, Tensor GateMlp) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            Normed.Dispose(); GateMsa.Dispose(); ShiftMlp.Dispose(); ScaleMlp.Dispose(); GateMlp.Dispose();
        }
    }

    /// <summary>Applies the layer to x [B, L, D] with timesteps [B] and labels [B] (the form with its own embedding).</summary>
    public Result Forward(Tensor x, Tensor timesteps, Tensor labels)
    {
        if (_emb is null) throw new InvalidOperationException("This AdaLayerNormZero has no embedding of its own; pass the conditioning.");
        using var cond = _emb.Forward(timesteps, labels);
        x.Device.Activate(cond, cond, Activation.SiLU);
        return ForwardActivated(x, cond);
    }

    /// <summary>
    /// Applies the layer to x [B, L, D] given silu(emb) [B, D] already computed (it is shared by every
    /// adaptive norm of a network, so the caller applies the SiLU once).
    /// </summary>
    public Result ForwardActivated(Tensor x, Tensor activatedEmb)
    {
        var device = x.Device;
        using var shiftMsa = _linear.ForwardChunk(activatedEmb, 0, _dim);
        using var scaleMsa = _linear.ForwardChunk(activatedEmb, _dim, _dim);
        var gateMsa = _linear.ForwardChunk(activatedEmb, 2 * _dim, _dim);
        var shiftMlp = _linear.ForwardChunk(activatedEmb, 3 * _dim, _dim);
        var scaleMlp = _linear.ForwardChunk(activatedEmb, 4 * _dim, _dim);
        var gateMlp = _linear.ForwardChunk(activatedEmb, 5 * _dim, _dim);
        var normed = device.Allocate(x.DType, x.ShapeArray());
        device.LayerNorm(x, null, null, normed, 1e-6f);
        device.Modulate(normed, shiftMsa, scaleMsa, normed);
        return new Result(normed, gateMsa, shiftMlp, scaleMlp, gateMlp);
    }
}
