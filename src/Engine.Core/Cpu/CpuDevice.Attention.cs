using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    // A job owns QueryBlock query rows of one (batch, head): a multiple of the micro-kernel's panel
    // width with both the AVX-512 (32) and the AVX2 (16) kernels.
    private const int QueryBlock = 64;

    // Key ranges up to this long are one tile: the scores of a query block over all keys stay in L2
    // (64 x 512 floats, 128 KB) and the softmax is exact, with no running rescale. Longer ranges are
    // walked in tiles of FlashKeyTile keys with the online softmax.
    private const int WholeRowKeys = 512;
    private const int FlashKeyTile = 256;

    // Reused aligned scratch: the packed K and V of a call (per calling thread) and each worker's block scratch.
    [ThreadStatic] private static AlignedBuffer? _attentionPacked;
    [ThreadStatic] private static AlignedBuffer? _attentionBlock;

    /// <summary>
    /// Fused attention computed transposed: per (batch, head, block of query rows) and key tile,
    /// S^T = (scale K_tile) Q^T, softmax statistics per query, then O^T += V_tile^T P^T, with the online
    /// (flash) rescale only when the keys need more than one tile.
    /// <para>
    /// Why transposed: (1) a row of S^T holds one key's score for every query of a panel, so the softmax
    /// max, exponentials and sums are element-wise vector operations across queries; (2) the micro-kernel
    /// writes S^T panel by panel (NR queries wide, one key per row), which is exactly the packed B layout
    /// of P^T in the second product, so the probabilities are never repacked; (3) the second product's
    /// rows are the head dimensions, which the micro-kernel's MR-row panels cover without padding for
    /// d = 40, 64, 80 (a query-major P V pads d = 40 to 64 columns with 32-wide panels). K (scaled) and
    /// V^T are packed once per head in a parallel pre-pass shared by every query block; Q^T once per block.
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
        // Tiles after the first start on a key panel boundary (K's packed panels are addressed by key).
        int keyTile = lk <= WholeRowKeys ? lk : FlashKeyTile / mr * mr;
        // Rows of a score panel: the tile rounded up to whole key panels (the micro-kernel stores full tiles).
        int tileRows = (keyTile + mr - 1) / mr * mr;
        int qBlocks = (lq + QueryBlock - 1) / QueryBlock;
        // Per head: scale K packed as A of S^T [lk x d] and V^T packed as A of O^T [d x lk]; both over
        // all keys, zero-padded to whole panels, each starting on a 64-byte boundary.
        long kPacked = ((long)(lk + mr - 1) / mr * mr * d + 15) / 16 * 16;
        long vPacked = ((long)(d + mr - 1) / mr * mr * lk + 15) / 16 * 16;
        long perHead = kPacked + vPacked;
        float* packed = (_attentionPacked ??= new AlignedBuffer()).Ensure(perHead * batch * heads);
        // Per job: packed Q^T (B panels), S^T panels, max, sum, correction, O^T accumulator [d x QueryBlock].
        long qPackFloats = (long)QueryBlock * d;
        long scoreFloats = (long)QueryBlock * tileRows;
        long accRows = (d + mr - 1) / mr * mr;
        long scratchFloats = qPackFloats + scoreFloats + 3 * QueryBlock + accRows * QueryBlock + 16;
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
                // V^T as A: op(A)(t, j) = V[j, t]; each depth (key) is a contiguous run of head dims.
                Gemm.PackAllA(new GemmProblem { M = d, K = lk, A = (nint)vRows, RsA = 1, CsA = width, Alpha = 1f }, dst + kPacked);
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
                AttentionBlock(qRows, kHead, kHead + kPacked, oRows, rows, lk, d, width, keyTile, tileRows, scratch, qPackFloats, scoreFloats, (int)accRows);
            });
        }
    }

    /// <summary>
    /// One query block against all keys. <paramref name="packedK"/> (scaled K, A panels over the keys) and
    /// <paramref name="packedVt"/> (V^T, A panels over the head dims) are the head's packed operands;
    /// <paramref name="scratch"/> (64-byte aligned) holds packed Q^T, the S^T panels
    /// ([tileRows x NR] each, QueryBlock / NR of them), max, sum, correction and the O^T accumulator.
    /// </summary>
    private static unsafe void AttentionBlock(float* q, float* packedK, float* packedVt, float* o, int rows, int lk, int d, int width,
        int keyTile, int tileRows, float* scratch, long qPackFloats, long scoreFloats, int accRows)
    {
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols, panels = QueryBlock / nr;
        float* packedQ = scratch, st = packedQ + qPackFloats;
        float* max = st + scoreFloats, sum = max + QueryBlock, correction = sum + QueryBlock;
        float* acc = correction + QueryBlock;
        new Span<float>(max, QueryBlock).Fill(float.NegativeInfinity);
        new Span<float>(sum, QueryBlock).Clear();
        // Q^T as B of S^T: op(B)(p, j) = Q[j, p], zero-padded to whole panels (padded queries score 0
        // against every key: finite, and their output columns are never read).
        Gemm.PackAllB(new GemmProblem { K = d, N = rows, B = (nint)q, RsB = 1, CsB = width }, packedQ);
        for (int p = (rows + nr - 1) / nr; p < panels; p++) new Span<float>(packedQ + (long)p * nr * d, nr * d).Clear();
        long vtStride = (long)mr * lk;
        for (int j0 = 0; j0 < lk; j0 += keyTile)
        {
            int cols = Math.Min(keyTile, lk - j0), keyRows = (cols + mr - 1) / mr * mr;
            bool first = j0 == 0;
            for (int jp = 0; jp < panels; jp++)
            {
                // S^T panel [keyRows, NR] = scale K_tile Q^T_panel; K's panels are zero beyond lk.
                float* panel = st + (long)jp * nr * tileRows;
                Gemm.RunPacked(keyRows, nr, d, packedK + (long)j0 * d, (long)mr * d, packedQ + (long)jp * nr * d, (long)nr * d, panel, nr, accumulate: false);
                if (first) PanelMaxExpSum(panel, cols, max + jp * nr, sum + jp * nr, null);
                else PanelMaxExpSum(panel, cols, max + jp * nr, sum + jp * nr, correction + jp * nr);
            }
            if (!first)
            {
                // Earlier output columns (queries) scale by exp(m_old - m_new).
                var corr = new ReadOnlySpan<float>(correction, QueryBlock);
                for (int t = 0; t < d; t++)
                {
                    var row = new Span<float>(acc + (long)t * QueryBlock, QueryBlock);
                    TensorPrimitives.Multiply(row, corr, row);
                }
            }
            // O^T [d, QueryBlock] (+)= V_tile^T [d, cols] P^T [cols, QueryBlock]: the S^T panels are P^T's
            // packed B panels; V^T's panels hold all keys, so the tile starts j0 deep in each.
            Gemm.RunPacked(d, QueryBlock, cols, packedVt + (long)j0 * mr, vtStride, st, (long)nr * tileRows, acc, QueryBlock, accumulate: !first);
        }
        // O[j, t] = O^T[t, j] / sum[j].
        for (int j = 0; j < rows; j++) sum[j] = 1f / sum[j];
        for (int j = 0; j < rows; j++)
        {
            float inv = sum[j];
            float* dst = o + (long)j * width;
            float* src = acc + j;
            for (int t = 0; t < d; t++) dst[t] = src[(long)t * QueryBlock] * inv;
        }
    }

    /// <summary>
    /// Softmax statistics of one S^T panel [cols keys x NR queries] (row stride NR): the new running max per
    /// query, then P^T = exp(S^T - max) in place and the sums. With <paramref name="correction"/> (not the
    /// first tile) the old sum is rescaled by exp(m_old - m_new), which is also written there for the output.
    /// </summary>
    private static unsafe void PanelMaxExpSum(float* panel, int cols, float* max, float* sum, float* correction)
    {
        int nr = Gemm.PanelCols;
        if (nr == 32 && Vector512.IsHardwareAccelerated)
        {
            var old0 = Vector512.Load(max); var old1 = Vector512.Load(max + 16);
            var m0 = old0; var m1 = old1;
            for (int p = 0; p < cols; p++)
            {
                m0 = Vector512.Max(m0, Vector512.Load(panel + p * 32));
                m1 = Vector512.Max(m1, Vector512.Load(panel + p * 32 + 16));
            }
            var s0 = Vector512.Load(sum); var s1 = Vector512.Load(sum + 16);
            if (correction != null)
            {
                var c0 = Exp(old0 - m0); var c1 = Exp(old1 - m1);
                c0.Store(correction); c1.Store(correction + 16);
                s0 *= c0; s1 *= c1;
            }
            for (int p = 0; p < cols; p++)
            {
                float* x = panel + p * 32;
                var e0 = Exp(Vector512.Load(x) - m0); var e1 = Exp(Vector512.Load(x + 16) - m1);
                e0.Store(x); e1.Store(x + 16);
                s0 += e0; s1 += e1;
            }
            m0.Store(max); m1.Store(max + 16);
            s0.Store(sum); s1.Store(sum + 16);
            return;
        }
        if (nr == 16 && Vector256.IsHardwareAccelerated)
        {
            var old0 = Vector256.Load(max); var old1 = Vector256.Load(max + 8);
            var m0 = old0; var m1 = old1;
            for (int p = 0; p < cols; p++)
            {
                m0 = Vector256.Max(m0, Vector256.Load(panel + p * 16));
                m1 = Vector256.Max(m1, Vector256.Load(panel + p * 16 + 8));
            }
            var s0 = Vector256.Load(sum); var s1 = Vector256.Load(sum + 8);
            if (correction != null)
            {
                var c0 = Exp(old0 - m0); var c1 = Exp(old1 - m1);
                c0.Store(correction); c1.Store(correction + 8);
                s0 *= c0; s1 *= c1;
            }
            for (int p = 0; p < cols; p++)
            {
                float* x = panel + p * 16;
                var e0 = Exp(Vector256.Load(x) - m0); var e1 = Exp(Vector256.Load(x + 8) - m1);
                e0.Store(x); e1.Store(x + 8);
                s0 += e0; s1 += e1;
            }
            m0.Store(max); m1.Store(max + 8);
            s0.Store(sum); s1.Store(sum + 8);
            return;
        }
        for (int r = 0; r < nr; r++)
        {
            float old = max[r], m = old;
            for (int p = 0; p < cols; p++) m = Math.Max(m, panel[p * nr + r]);
            float s = sum[r];
            if (correction != null) { float c = MathF.Exp(old - m); correction[r] = c; s *= c; }
            for (int p = 0; p < cols; p++)
            {
                float e = MathF.Exp(panel[p * nr + r] - m);
                panel[p * nr + r] = e;
                s += e;
            }
            max[r] = m;
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
