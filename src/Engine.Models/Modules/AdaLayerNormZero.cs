using Engine.Core;
using Engine.Models.Loading;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>AdaLayerNormZero</c>: e = linear(silu(emb(t, label))) split into six [B, D] chunks
/// (shift/scale/gate for attention, then for the MLP); returns LayerNorm(x, no affine, eps 1e-6)
/// modulated by the first shift and scale, and the other chunks. Each chunk is its own GEMM over a
/// weight row slice, so nothing is split on the device.
/// </summary>
public sealed class AdaLayerNormZero
{
    private readonly CombinedTimestepLabelEmbeddings _emb;
    private readonly Linear _linear;
    private readonly int _dim;

    /// <summary>Declares <c>emb.*</c> and <c>linear</c> in <paramref name="scope"/>.</summary>
    public AdaLayerNormZero(ParameterScope scope, int dim, int numEmbeddings)
    {
        _dim = dim;
        _emb = new CombinedTimestepLabelEmbeddings(scope.Sub("emb"), numEmbeddings, dim);
        _linear = new Linear(scope, "linear", dim, 6 * dim);
    }

    /// <summary>The conditioning embedding (timestep + label).</summary>
    public CombinedTimestepLabelEmbeddings Embedding => _emb;

    /// <summary>The outputs of one call; the caller disposes them.</summary>
    public sealed record Result(Tensor Normed, Tensor GateMsa, Tensor ShiftMlp, Tensor ScaleMlp, Tensor GateMlp) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            Normed.Dispose(); GateMsa.Dispose(); ShiftMlp.Dispose(); ScaleMlp.Dispose(); GateMlp.Dispose();
        }
    }

    /// <summary>Applies the layer to x [B, L, D] with timesteps [B] and labels [B].</summary>
    public Result Forward(Tensor x, Tensor timesteps, Tensor labels)
    {
        var device = x.Device;
        using var cond = _emb.Forward(timesteps, labels);
        device.Activate(cond, cond, Activation.SiLU);
        using var shiftMsa = _linear.ForwardChunk(cond, 0, _dim);
        using var scaleMsa = _linear.ForwardChunk(cond, _dim, _dim);
        var gateMsa = _linear.ForwardChunk(cond, 2 * _dim, _dim);
        var shiftMlp = _linear.ForwardChunk(cond, 3 * _dim, _dim);
        var scaleMlp = _linear.ForwardChunk(cond, 4 * _dim, _dim);
        var gateMlp = _linear.ForwardChunk(cond, 5 * _dim, _dim);
        var normed = device.Allocate(x.ShapeArray());
        device.LayerNorm(x, null, null, normed, 1e-6f);
        device.Modulate(normed, shiftMsa, scaleMsa, normed);
        return new Result(normed, gateMsa, shiftMlp, scaleMlp, gateMlp);
    }
}
