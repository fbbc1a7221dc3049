using System.Numerics.Tensors;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        var (qArr, qOff) = Raw(q);
        var (kArr, kOff) = Raw(k);
        var (vArr, vOff) = Raw(v);
        var (oArr, oOff) = Raw(output);
        // One task per (batch, head, query row); scores for a row fit in a small array, so the
        // Lq x Lk matrix is never stored as a whole.
        Parallel.For(0, batch * heads * lq, Parallelism, () => new float[lk], (job, _, scores) =>
        {
            int i = job % lq, bh = job / lq, h = bh % heads, b = bh / heads;
            var qRow = qArr.AsSpan(qOff + (b * lq + i) * width + h * d, d);
            for (int j = 0; j < lk; j++)
                scores[j] = TensorPrimitives.Dot(qRow, kArr.AsSpan(kOff + (b * lk + j) * width + h * d, d)) * scale;
            TensorPrimitives.SoftMax(scores, scores);
            var outRow = oArr.AsSpan(oOff + (b * lq + i) * width + h * d, d);
            outRow.Clear();
            for (int j = 0; j < lk; j++)
                TensorPrimitives.MultiplyAdd(vArr.AsSpan(vOff + (b * lk + j) * width + h * d, d), scores[j], outRow, outRow);
            return scores;
        }, _ => { });
    }

    /// <inheritdoc />
    protected override void SoftmaxCore(Tensor x, Tensor output)
    {
        int d = x.Dim(-1), rows = (int)(x.Length / d);
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        Parallel.For(0, rows, Parallelism, r => TensorPrimitives.SoftMax(xArr.AsSpan(xOff + r * d, d), oArr.AsSpan(oOff + r * d, d)));
    }
}
