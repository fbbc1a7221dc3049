using System.Numerics.Tensors;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    // Flash-attention blocking: a job owns QueryBlock query rows of one (batch, head) and walks the
    // keys KeyBlock at a time. The score tile (64 x 128 floats, 32 KB) stays in L1/L2 and the
    // Lq x Lk matrix never exists. Both block products run on the packed GEMM micro-kernel.
    // Measured at L 1024, d 64: 128-row query blocks give the same speed, 256-key tiles are slower.
    private const int QueryBlock = 64;
    private const int KeyBlock = 128;

    /// <summary>
    /// Flash-style attention: per (batch, head, block of query rows), scores S = scale Q K^T for one
    /// key tile, an online softmax (running row max m and sum l; earlier output is rescaled by
    /// exp(m_old - m_new) when the max grows), then O += P V. The output rows themselves serve as the
    /// accumulator and are divided by l at the end.
    /// </summary>
    protected override unsafe void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        var (qArr, qOff) = Raw(q);
        var (kArr, kOff) = Raw(k);
        var (vArr, vOff) = Raw(v);
        var (oArr, oOff) = Raw(output);
        int qBlocks = (lq + QueryBlock - 1) / QueryBlock;
        int scoreCols = Math.Min(KeyBlock, lk);
        fixed (float* pq = qArr, pk = kArr, pv = vArr, po = oArr)
        {
            nint qBase = (nint)(pq + qOff), kBase = (nint)(pk + kOff), vBase = (nint)(pv + vOff), oBase = (nint)(po + oOff);
            Parallel.For(0, batch * heads * qBlocks, Parallelism,
                () => new float[QueryBlock * scoreCols + 2 * QueryBlock],
                (job, _, scratch) =>
                {
                    int qb = job % qBlocks, bh = job / qBlocks, h = bh % heads, b = bh / heads;
                    int i0 = qb * QueryBlock, rows = Math.Min(QueryBlock, lq - i0);
                    long headOffset = h * d;
                    float* qRows = (float*)qBase + ((long)b * lq + i0) * width + headOffset;
                    float* oRows = (float*)oBase + ((long)b * lq + i0) * width + headOffset;
                    float* kRows = (float*)kBase + (long)b * lk * width + headOffset;
                    float* vRows = (float*)vBase + (long)b * lk * width + headOffset;
                    fixed (float* s = scratch)
                        AttentionBlock(qRows, kRows, vRows, oRows, rows, lk, d, width, scale, s, scoreCols);
                    return scratch;
                },
                _ => { });
        }
    }

    private static unsafe void AttentionBlock(float* q, float* k, float* v, float* o, int rows, int lk, int d, int width,
        float scale, float* scratch, int scoreCols)
    {
        float* rowMax = scratch + QueryBlock * scoreCols, rowSum = rowMax + QueryBlock;
        for (int r = 0; r < rows; r++) { rowMax[r] = float.NegativeInfinity; rowSum[r] = 0f; }
        for (int j0 = 0; j0 < lk; j0 += KeyBlock)
        {
            int cols = Math.Min(KeyBlock, lk - j0);
            // S [rows, cols] = scale * Q [rows, d] K_tile^T (K rows read as columns: RsB 1, CsB width).
            Gemm.Run(new GemmProblem
            {
                M = rows, N = cols, K = d,
                A = (nint)q, RsA = width, CsA = 1,
                B = (nint)(k + (long)j0 * width), RsB = 1, CsB = width,
                C = (nint)scratch, Ldc = scoreCols, Alpha = scale,
            }, null);
            for (int r = 0; r < rows; r++)
            {
                var sRow = new Span<float>(scratch + r * scoreCols, cols);
                float mOld = rowMax[r], mNew = Math.Max(mOld, TensorPrimitives.Max(sRow));
                ExpShiftedInPlace(sRow, mNew);
                float correction = j0 == 0 ? 0f : MathF.Exp(mOld - mNew);
                rowSum[r] = rowSum[r] * correction + TensorPrimitives.Sum(sRow);
                rowMax[r] = mNew;
                if (j0 > 0 && correction != 1f)
                {
                    var oRow = new Span<float>(o + (long)r * width, d);
                    TensorPrimitives.Multiply(oRow, correction, oRow);
                }
            }
            // O [rows, d] (+)= P [rows, cols] V_tile [cols, d]; the first tile overwrites.
            Gemm.Run(new GemmProblem
            {
                M = rows, N = d, K = cols,
                A = (nint)scratch, RsA = scoreCols, CsA = 1,
                B = (nint)(v + (long)j0 * width), RsB = width, CsB = 1,
                C = (nint)o, Ldc = width, Alpha = 1f, Accumulate = j0 > 0,
            }, null);
        }
        for (int r = 0; r < rows; r++)
        {
            var oRow = new Span<float>(o + (long)r * width, d);
            TensorPrimitives.Multiply(oRow, 1f / rowSum[r], oRow);
        }
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
