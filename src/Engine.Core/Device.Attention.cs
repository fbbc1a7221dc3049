using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// Multi-head scaled dot-product attention without materialising the Lq x Lk matrix:
    /// q [B, Lq, H*d], k and v [B, Lk, H*d], output [B, Lq, H*d]; per head
    /// softmax(q k^T * scale) v. Heads are contiguous slices of the last dimension, as diffusers
    /// lays out the projections.
    /// </summary>
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        CheckCompute(q, nameof(q)); CheckCompute(k, nameof(k)); CheckCompute(v, nameof(v)); CheckCompute(output, nameof(output));
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3) throw new ArgumentException($"Attention needs rank-3 q, k, v; got {q}, {k}, {v}.");
        int inner = q.Dim(2);
        if (heads < 1 || inner % heads != 0) throw new ArgumentException($"Attention: width {inner} is not divisible by {heads} heads.");
        if (k.Dim(0) != q.Dim(0) || v.Dim(0) != q.Dim(0) || k.Dim(2) != inner || v.Dim(2) != inner || v.Dim(1) != k.Dim(1))
            throw new ArgumentException($"Attention shapes disagree: q {q}, k {k}, v {v}.");
        CheckSameShape(q, output, "Attention");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Attention(q, k, heads));
        if (AnyHalf(q, k, v, output) && !HandlesHalfActivations("Attention", q, k, v, output))
        {
            using var s = Stage();
            AttentionCore(s.In(q), s.In(k), s.In(v), s.Out(output), heads, scale);
            s.Commit();
        }
        else AttentionCore(q, k, v, output, heads, scale);
    }

    /// <summary>Implements <see cref="Attention"/>.</summary>
    protected abstract void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale);
}
