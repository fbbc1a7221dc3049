using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    // Flash-attention blocking: a job owns QueryBlock query rows of one (batch, head) and walks the
    // keys one tile (16 micro-kernel panels, 128 keys with AVX-512) at a time. The score tile stays in
    // L1/L2 and the Lq x Lk matrix never exists. Both block products run on the packed GEMM micro-kernel.
    private const int QueryBlock = 64;

    // Reused aligned scratch: the packed K and V of a call (per calling thread) and each worker's block scratch.
    [ThreadStatic] private static AlignedBuffer? _attentionPacked;
    [ThreadStatic] private static AlignedBuffer? _attentionBlock;
    private const int KeyPanelsPerTile = 16;

    /// <summary>
    /// Flash-style attention: per (batch, head, block of query rows), transposed scores
    /// S^T = (scale K_tile) Q^T for one key tile, an online softmax (running max m and sum l per query;
    /// earlier output is rescaled by exp(m_old - m_new) when the max grows), then O += P V. The output
    /// tile is accumulated in scratch and divided by l into the output rows at the end.
    /// <para>
    /// Why transposed: a row of S^T holds one key's score for every query of the block, so the softmax
    /// statistics and the exponentials are element-wise vector operations across queries, and P, the A
    /// operand of P V, packs with contiguous copies. Operands are packed for the micro-kernel once, not
    /// per product: scale K (A of S^T) and V (B of P V) once per head in a parallel pre-pass that every
    /// query block of the head shares, Q (B of S^T) once per query block; only P is packed per tile.
    /// </para>
    /// </summary>
    protected override unsafe void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        var (qArr, qOff) = Raw(q);
        var (kArr, kOff) = Raw(k);
        var (vArr, vOff) = Raw(v);
        var (oArr, oOff) = Raw(output);
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
        int keyTile = Math.Min(mr * KeyPanelsPerTile, lk);
        int qBlocks = (lq + QueryBlock - 1) / QueryBlock;
        // Per head: scale K packed as A of S^T [lk x d] and V packed as B of P V [lk x d]; both over all
        // keys, each starting on a 64-byte boundary (the micro-kernel loads B panels aligned).
        long kPacked = ((long)((lk + mr - 1) / mr) * mr * d + 15) / 16 * 16, vPacked = (long)((d + nr - 1) / nr) * nr * lk;
        long perHead = (kPacked + vPacked + 15) / 16 * 16;
        float* packed = (_attentionPacked ??= new AlignedBuffer()).Ensure(perHead * batch * heads);
        // Per job: packed Q (B, aligned first), S^T tile, max, sum, correction, packed P, output tile.
        int qPackFloats = (QueryBlock + nr - 1) / nr * nr * d;
        int pPackFloats = (QueryBlock + mr - 1) / mr * mr * keyTile;
        int oStride = (d + 15) / 16 * 16;
        long scratchFloats = qPackFloats + (long)keyTile * QueryBlock + 3 * QueryBlock + pPackFloats + (long)QueryBlock * oStride;
        fixed (float* pq = qArr, pk = kArr, pv = vArr, po = oArr)
        {
            nint qBase = (nint)(pq + qOff), kBase = (nint)(pk + kOff), vBase = (nint)(pv + vOff), oBase = (nint)(po + oOff);
            nint packedBase = (nint)packed;
            Parallel.For(0, batch * heads, Parallelism, bh =>
            {
                int h = bh % heads, b = bh / heads;
                float* kRows = (float*)kBase + (long)b * lk * width + h * d;
                float* vRows = (float*)vBase + (long)b * lk * width + h * d;
                float* dst = (float*)packedBase + bh * perHead;
                Gemm.PackAllA(new GemmProblem { M = lk, K = d, A = (nint)kRows, RsA = width, CsA = 1, Alpha = scale }, dst);
                Gemm.PackAllB(new GemmProblem { K = lk, N = d, B = (nint)vRows, RsB = width, CsB = 1 }, dst + kPacked);
            });
            Parallel.For(0, batch * heads * qBlocks, Parallelism, job =>
            {
                float* scratch = (_attentionBlock ??= new AlignedBuffer()).Ensure(scratchFloats);
                int qb = job % qBlocks, bh = job / qBlocks, h = bh % heads, b = bh / heads;
                int i0 = qb * QueryBlock, rows = Math.Min(QueryBlock, lq - i0);
                long headOffset = h * d;
                float* qRows = (float*)qBase + ((long)b * lq + i0) * width + headOffset;
                float* oRows = (float*)oBase + ((long)b * lq + i0) * width + headOffset;
                float* kHead = (float*)packedBase + bh * perHead;
                AttentionBlock(qRows, kHead, kHead + kPacked, oRows, rows, lk, d, width, keyTile, scratch, qPackFloats, pPackFloats, oStride);
            });
        }
    }

    /// <summary>
    /// One query block against all keys. <paramref name="packedK"/> (scaled, A panels) and
    /// <paramref name="packedV"/> (B panels) are the head's packed operands; <paramref name="scratch"/>
    /// (64-byte aligned) holds packed Q, the S^T tile [keyTile x QueryBlock], max, sum, correction, packed P
    /// and the output accumulator: a dense [rows x oStride] tile rather than the output rows themselves,
    /// whose stride (heads x d, 2 KB at 8 heads of 64) maps many rows onto few L1 sets.
    /// </summary>
    private static unsafe void AttentionBlock(float* q, float* packedK, float* packedV, float* o, int rows, int lk, int d, int width,
        int keyTile, float* scratch, int qPackFloats, int pPackFloats, int oStride)
    {
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
        float* packedQ = scratch, st = packedQ + qPackFloats;
        float* max = st + keyTile * QueryBlock, sum = max + QueryBlock, correction = sum + QueryBlock;
        float* packedP = correction + QueryBlock, acc = packedP + pPackFloats;
        var maxRow = new Span<float>(max, rows);
        var sumRow = new Span<float>(sum, rows);
        var corrRow = new Span<float>(correction, rows);
        maxRow.Fill(float.NegativeInfinity);
        sumRow.Clear();
        // Q^T as B of S^T: op(B)(p, j) = Q[j, p], packed once for every key tile.
        Gemm.PackAllB(new GemmProblem { K = d, N = rows, B = (nint)q, RsB = 1, CsB = width }, packedQ);
        for (int j0 = 0; j0 < lk; j0 += keyTile)
        {
            int cols = Math.Min(keyTile, lk - j0);
            // S^T [cols, rows] = scale K_tile Q^T; the tile's A panels start at key j0 (a multiple of MR).
            Gemm.RunPacked(cols, rows, d, packedK + (long)j0 * d, (long)mr * d, packedQ, (long)nr * d, st, QueryBlock, accumulate: false);
            // New running max per query (element-wise over the key rows), the rescale factor of the
            // earlier output and sum, then P^T = exp(S^T - max) and the sums, all across queries.
            maxRow.CopyTo(corrRow);
            ColumnMax(st, cols, rows, max);
            if (j0 > 0)
            {
                // correction = exp(m_old - m_new): m_old sits in corrRow.
                TensorPrimitives.Subtract(corrRow, maxRow, corrRow);
                TensorPrimitives.Exp(corrRow, corrRow);
                TensorPrimitives.Multiply(sumRow, corrRow, sumRow);
                for (int r = 0; r < rows; r++)
                {
                    float c = correction[r];
                    if (c != 1f)
                    {
                        var accRow = new Span<float>(acc + (long)r * oStride, d);
                        TensorPrimitives.Multiply(accRow, c, accRow);
                    }
                }
            }
            ColumnExpSum(st, cols, rows, max, sum);
            // O [rows, d] (+)= P [rows, cols] V_tile [cols, d]: P is S^T read transposed (contiguous
            // per key), V's panels hold all keys so the tile starts j0 deep in each (stride NR lk).
            Gemm.PackAllA(new GemmProblem { M = rows, K = cols, A = (nint)st, RsA = 1, CsA = QueryBlock, Alpha = 1f }, packedP);
            Gemm.RunPacked(rows, d, cols, packedP, (long)mr * cols, packedV + (long)j0 * nr, (long)nr * lk, acc, oStride, accumulate: j0 > 0);
        }
        for (int r = 0; r < rows; r++)
            TensorPrimitives.Multiply(new ReadOnlySpan<float>(acc + (long)r * oStride, d), 1f / sum[r], new Span<float>(o + (long)r * width, d));
    }

    // The two softmax passes over a transposed score tile [cols, QueryBlock]: each query is a lane, each
    // key a row, so the running statistics stay in registers while the rows stream past (no call per
    // row: at 64 queries x 128 keys the per-call overhead of span helpers cost as much as the exps).

    /// <summary>max[r] = max(max[r], st[p, r]) over the tile's key rows p.</summary>
    private static unsafe void ColumnMax(float* st, int cols, int rows, float* max)
    {
        int r = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; r + 16 <= rows; r += 16)
            {
                var m = Vector512.Load(max + r);
                for (int p = 0; p < cols; p++) m = Vector512.Max(m, Vector512.Load(st + p * QueryBlock + r));
                m.Store(max + r);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; r + 8 <= rows; r += 8)
            {
                var m = Vector256.Load(max + r);
                for (int p = 0; p < cols; p++) m = Vector256.Max(m, Vector256.Load(st + p * QueryBlock + r));
                m.Store(max + r);
            }
        for (; r < rows; r++)
        {
            float m = max[r];
            for (int p = 0; p < cols; p++) m = Math.Max(m, st[p * QueryBlock + r]);
            max[r] = m;
        }
    }

    /// <summary>st[p, r] = exp(st[p, r] - max[r]) in place, and sum[r] += the new values.</summary>
    private static unsafe void ColumnExpSum(float* st, int cols, int rows, float* max, float* sum)
    {
        int r = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; r + 16 <= rows; r += 16)
            {
                var m = Vector512.Load(max + r);
                var s = Vector512.Load(sum + r);
                for (int p = 0; p < cols; p++)
                {
                    float* x = st + p * QueryBlock + r;
                    var e = Exp(Vector512.Load(x) - m);
                    e.Store(x);
                    s += e;
                }
                s.Store(sum + r);
            }
        if (Vector256.IsHardwareAccelerated)
            for (; r + 8 <= rows; r += 8)
            {
                var m = Vector256.Load(max + r);
                var s = Vector256.Load(sum + r);
                for (int p = 0; p < cols; p++)
                {
                    float* x = st + p * QueryBlock + r;
                    var e = Exp(Vector256.Load(x) - m);
                    e.Store(x);
                    s += e;
                }
                s.Store(sum + r);
            }
        for (; r < rows; r++)
        {
            float s = sum[r];
            for (int p = 0; p < cols; p++)
            {
                float* x = st + p * QueryBlock + r;
                *x = MathF.Exp(*x - max[r]);
                s += *x;
            }
            sum[r] = s;
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
