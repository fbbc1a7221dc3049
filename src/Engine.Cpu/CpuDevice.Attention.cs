using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Tensor = Engine.Core.Tensor;

namespace Engine.Cpu;

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

    // Reused aligned scratch: the packed K and V^T of a call (per calling thread) and each worker's block scratch.
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
    /// V^T are packed once per head, by the first job that needs them, and shared by every query block;
    /// Q^T is packed once per block. On AVX-512 the scores, exponentials and sums are one register pass
    /// (<see cref="AttentionScores"/>) against a max that is raised only when it falls 2 (log2) behind;
    /// elsewhere the GEMM writes S^T and <see cref="PanelMaxExpSum(float*, int, float*, float*, float*)"/> follows.
    /// </para>
    /// </summary>
    protected override unsafe void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        var (qArr, qOff) = Raw(q);
        var (kArr, kOff) = Raw(k);
        var (vArr, vOff) = Raw(v);
        var (oArr, oOff) = Raw(output);
        if (lk == 0)
        {
            // No keys: every output row is an empty weighted sum.
            Span(output).Clear();
            return;
        }
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
        // Tiles after the first start on a key panel boundary (K's packed panels are addressed by key).
        int keyTile = lk <= WholeRowKeys ? lk : FlashKeyTile / mr * mr;
        // Rows of a score panel: the tile rounded up to whole key panels (the micro-kernel stores full tiles).
        int tileRows = (keyTile + mr - 1) / mr * mr;
        int qBlocks = (lq + QueryBlock - 1) / QueryBlock;
        // Per head: K scaled by scale log2 e (the softmax runs in base 2) packed as A of S^T [lk x d] and
        // V^T packed as A of O^T [d x lk]; both over all keys, zero-padded to whole panels, each starting
        // on a 64-byte boundary.
        long kPacked = ((long)(lk + mr - 1) / mr * mr * d + 15) / 16 * 16;
        long vPacked = ((long)(d + mr - 1) / mr * mr * lk + 15) / 16 * 16;
        long perHead = kPacked + vPacked;
        using var packedLease = KernelScratch.Rent(perHead * batch * heads);
        float* packed = packedLease.Pointer;
        // Per job: packed Q^T (B panels), S^T panels, max, sum, correction, O^T accumulator [d x QueryBlock].
        long qPackFloats = (long)QueryBlock * d;
        long scoreFloats = (long)QueryBlock * tileRows;
        long accRows = (d + mr - 1) / mr * mr;
        long scratchFloats = qPackFloats + scoreFloats + 3 * QueryBlock + accRows * QueryBlock + 16;
        fixed (float* pq = qArr, pk = kArr, pv = vArr, po = oArr)
        {
            nint qBase = (nint)(pq + qOff), kBase = (nint)(pk + kOff), vBase = (nint)(pv + vOff), oBase = (nint)(po + oOff);
            nint packedBase = (nint)packed;
            // Heads are packed on first use inside the one parallel loop (a second fork-join costs more
            // than the packing at short lengths): Parallel.For starts each worker on its own contiguous
            // range of jobs, so workers meet on a head, and wait for its packing, only when stealing.
            int[] headState = HeadStates(batch * heads);
            Parallel.For(0, batch * heads * qBlocks, Parallelism, job =>
            {
                float* scratch = (_attentionBlock ??= new AlignedBuffer()).Ensure(scratchFloats);
                int qb = job % qBlocks, bh = job / qBlocks, h = bh % heads, b = bh / heads;
                float* kHead = (float*)packedBase + bh * perHead;
                if (Volatile.Read(ref headState[bh]) != HeadPacked)
                    PackHead(headState, bh, (float*)kBase + (long)b * lk * width + h * d, (float*)vBase + (long)b * lk * width + h * d,
                        lk, d, width, scale * SimdMath.Log2E, kHead, kHead + kPacked);
                int i0 = qb * QueryBlock, rows = Math.Min(QueryBlock, lq - i0);
                long headOffset = h * d;
                float* qRows = (float*)qBase + ((long)b * lq + i0) * width + headOffset;
                float* oRows = (float*)oBase + ((long)b * lq + i0) * width + headOffset;
                // A worker's next job is usually the next block of the same head: its query rows are
                // prefetched while this block computes (with few keys the rows are read faster than
                // the hardware prefetcher fetches them).
                float* nextQ = qb + 1 < qBlocks ? qRows + (long)QueryBlock * width : null;
                int nextRows = Math.Min(QueryBlock, lq - i0 - QueryBlock);
                AttentionBlock(qRows, kHead, kHead + kPacked, oRows, rows, lk, d, width, keyTile, tileRows, scratch, qPackFloats, scoreFloats, (int)accRows,
                    nextQ, nextRows);
            });
        }
    }

    [ThreadStatic] private static int[]? _attentionHeadStates;
    private const int HeadUnpacked = 0, HeadPacking = 1, HeadPacked = 2;

    /// <summary>The calling thread's per-head packing states for one call, all <see cref="HeadUnpacked"/>.</summary>
    private static int[] HeadStates(int count)
    {
        var states = _attentionHeadStates;
        if (states is null || states.Length < count) _attentionHeadStates = states = new int[Math.Max(count, 64)];
        else Array.Clear(states, 0, count);
        return states;
    }

    /// <summary>
    /// Packs head <paramref name="bh"/>'s K (scaled, A panels over the keys) and V^T (A panels over the head
    /// dims) unless another worker has claimed it; then waits until the packing is published.
    /// </summary>
    private static unsafe void PackHead(int[] states, int bh, float* kRows, float* vRows, int lk, int d, int width, float scale,
        float* packedK, float* packedVt)
    {
        if (Interlocked.CompareExchange(ref states[bh], HeadPacking, HeadUnpacked) == HeadUnpacked)
        {
            PackKeys(kRows, lk, d, width, scale, packedK);
            // V^T as A: op(A)(t, j) = V[j, t]; each depth (key) is a contiguous run of head dims.
            Gemm.PackAllA(new GemmProblem { M = d, K = lk, A = (nint)vRows, RsA = 1, CsA = width, Alpha = 1f }, packedVt);
            Volatile.Write(ref states[bh], HeadPacked);
            return;
        }
        var wait = new SpinWait();
        while (Volatile.Read(ref states[bh]) != HeadPacked) wait.SpinOnce();
    }

    /// <summary>
    /// scale K as the A panels of S^T (dst[panel][p * MR + r] = scale K[panel * MR + r, p], zero past
    /// <paramref name="lk"/>): with 8-row panels by 8 x 8 register transposes, otherwise by the GEMM's packer.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackKeys(float* k, int lk, int d, int width, float scale, float* dst)
    {
        int mr = Gemm.PanelRows;
        if (mr != 8 || !Avx.IsSupported)
        {
            Gemm.PackAllA(new GemmProblem { M = lk, K = d, A = (nint)k, RsA = width, CsA = 1, Alpha = scale }, dst);
            return;
        }
        float* scales = stackalloc float[8];
        new Span<float>(scales, 8).Fill(scale);
        int d8 = d / 8 * 8;
        for (int r0 = 0; r0 < lk; r0 += 8)
        {
            float* panel = dst + (long)r0 * d, src = k + (long)r0 * width;
            int n = Math.Min(8, lk - r0);
            if (n == 8)
                for (int p0 = 0; p0 < d8; p0 += 8) Transpose8x8.Run(src + p0, width, panel + p0 * 8, 8, scales);
            for (int p = n == 8 ? d8 : 0; p < d; p++)
            {
                int r = 0;
                for (; r < n; r++) panel[p * 8 + r] = scale * src[(long)r * width + p];
                for (; r < 8; r++) panel[p * 8 + r] = 0f;
            }
        }
    }

    /// <summary>
    /// One query block against all keys. <paramref name="packedK"/> (scaled K, A panels over the keys) and
    /// <paramref name="packedVt"/> (V^T, A panels over the head dims) are the head's packed operands;
    /// <paramref name="scratch"/> (64-byte aligned) holds packed Q^T, the S^T panels
    /// ([tileRows x NR] each, QueryBlock / NR of them), max, sum, correction and the O^T accumulator.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void AttentionBlock(float* q, float* packedK, float* packedVt, float* o, int rows, int lk, int d, int width,
        int keyTile, int tileRows, float* scratch, long qPackFloats, long scoreFloats, int accRows, float* nextQ, int nextRows)
    {
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols, panels = QueryBlock / nr;
        float* packedQ = scratch, st = packedQ + qPackFloats;
        float* max = st + scoreFloats, sum = max + QueryBlock, correction = sum + QueryBlock;
        float* acc = correction + QueryBlock;
        new Span<float>(max, QueryBlock).Fill(float.NegativeInfinity);
        new Span<float>(sum, QueryBlock).Clear();
        // Q^T as B of S^T: op(B)(p, j) = Q[j, p], zero-padded to whole panels (padded queries score 0
        // against every key: finite, and their output columns are never read).
        PackQueriesTransposed(q, rows, d, width, packedQ);
        // The output rows written at the end and the next block's query rows, into L2.
        PrefetchRows(o, rows, d, width);
        if (nextQ != null) PrefetchRows(nextQ, nextRows, d, width);
        long vtStride = (long)mr * lk;
        bool fused = AttentionScores.Supported;
        for (int j0 = 0; j0 < lk; j0 += keyTile)
        {
            int cols = Math.Min(keyTile, lk - j0), keyRows = (cols + mr - 1) / mr * mr;
            bool first = j0 == 0;
            if (fused)
            {
                // S^T, the exponentials and the sums in one pass per panel, against a reference max that
                // only moves by more than a threshold (AttentionScores); its raises collect in correction.
                new Span<float>(correction, QueryBlock).Fill(1f);
                for (int jp = 0; jp < panels; jp++)
                    AttentionScores.Panel(packedK + (long)j0 * d, packedQ + (long)jp * nr * d, d, cols, st + (long)jp * nr * tileRows,
                        max + jp * nr, sum + jp * nr, correction + jp * nr);
            }
            else
                for (int jp = 0; jp < panels; jp++)
                {
                    // S^T panel [keyRows, NR] = scale K_tile Q^T_panel; K's panels are zero beyond lk.
                    float* panel = st + (long)jp * nr * tileRows;
                    Gemm.RunPacked(keyRows, nr, d, packedK + (long)j0 * d, (long)mr * d, packedQ + (long)jp * nr * d, (long)nr * d, panel, nr, accumulate: false);
                    if (first) PanelMaxExpSum(panel, cols, max + jp * nr, sum + jp * nr, null);
                    else PanelMaxExpSum(panel, cols, max + jp * nr, sum + jp * nr, correction + jp * nr);
                }
            // Earlier output columns (queries) scale by exp(m_old - m_new), unless no max moved.
            if (!first) RescaleColumns(acc, d, correction);
            // O^T [d, QueryBlock] (+)= V_tile^T [d, cols] P^T [cols, QueryBlock]: the S^T panels are P^T's
            // packed B panels; V^T's panels hold all keys, so the tile starts j0 deep in each.
            Gemm.RunPacked(d, QueryBlock, cols, packedVt + (long)j0 * mr, vtStride, st, (long)nr * tileRows, acc, QueryBlock, accumulate: !first);
        }
        // O[j, t] = O^T[t, j] / sum[j].
        for (int j = 0; j < rows; j++) sum[j] = 1f / sum[j];
        StoreOutputTransposed(acc, sum, rows, d, o, width);
    }

    /// <summary>acc[t, j] *= factor[j] over the <paramref name="d"/> rows of a [d x QueryBlock] accumulator; nothing when every factor is 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void RescaleColumns(float* acc, int d, float* factor)
    {
        var ones = Vector256<float>.One;
        bool any = false;
        for (int j = 0; j < QueryBlock; j += 8) any |= Vector256.Load(factor + j) != ones;
        if (!any) return;
        for (int t = 0; t < d; t++)
        {
            float* row = acc + (long)t * QueryBlock;
            for (int j = 0; j < QueryBlock; j += 8) (Vector256.Load(row + j) * Vector256.Load(factor + j)).Store(row + j);
        }
    }

    /// <summary>Prefetches into L2 the cache lines of <paramref name="rows"/> rows of <paramref name="d"/> floats, <paramref name="width"/> apart.</summary>
    private static unsafe void PrefetchRows(float* p, int rows, int d, int width)
    {
        if (!Sse.IsSupported) return;
        for (int r = 0; r < rows; r++)
        {
            nint start = (nint)(p + (long)r * width) & ~(nint)63, end = (nint)(p + (long)r * width + d);
            for (nint line = start; line < end; line += 64) Sse.Prefetch1((void*)line);
        }
    }

    /// <summary>
    /// Packs Q^T [d x QueryBlock] as the B panels of S^T (dst[panel][p * NR + c] = Q[panel * NR + c, p]) from
    /// query rows <paramref name="width"/> apart, by 8 x 8 register transposes; queries past
    /// <paramref name="rows"/> are zero (they score 0 against every key: finite, and their output is never read).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void PackQueriesTransposed(float* q, int rows, int d, int width, float* dst)
    {
        int nr = Gemm.PanelCols;
        if (rows < QueryBlock) new Span<float>(dst, QueryBlock * d).Clear();
        int d8 = Avx.IsSupported ? d / 8 * 8 : 0;
        for (int c0 = 0; c0 < rows; c0 += 8)
        {
            float* panel = dst + (long)(c0 / nr) * nr * d;
            int c = c0 % nr, n = Math.Min(8, rows - c0);
            float* src = q + (long)c0 * width;
            if (n == 8)
                for (int p0 = 0; p0 < d8; p0 += 8) Transpose8x8.Run(src + p0, width, panel + p0 * nr + c, nr);
            for (int p = n == 8 ? d8 : 0; p < d; p++)
                for (int i = 0; i < n; i++) panel[p * nr + c + i] = src[(long)i * width + p];
        }
    }

    /// <summary>O[j, t] = acc[t, j] * inv[j] for the block's <paramref name="rows"/> queries, by 8 x 8 register transposes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void StoreOutputTransposed(float* acc, float* inv, int rows, int d, float* o, int width)
    {
        int d8 = Avx.IsSupported ? d / 8 * 8 : 0, rows8 = Avx.IsSupported ? rows / 8 * 8 : 0;
        for (int j0 = 0; j0 < rows8; j0 += 8)
            for (int t0 = 0; t0 < d8; t0 += 8)
                Transpose8x8.Run(acc + (long)t0 * QueryBlock + j0, QueryBlock, o + (long)j0 * width + t0, width, inv + j0);
        for (int j = 0; j < rows; j++)
        {
            float scale = inv[j];
            float* dst = o + (long)j * width;
            for (int t = j < rows8 ? d8 : 0; t < d; t++) dst[t] = acc[(long)t * QueryBlock + j] * scale;
        }
    }

    /// <summary>
    /// Softmax statistics of one S^T panel [cols keys x NR queries] (row stride NR): the new running max per
    /// query, then P^T = 2^(S^T - max) in place and the sums (scores are in base 2: K was packed scaled by
    /// log2 e). With <paramref name="correction"/> (not the first tile) the old sum is rescaled by
    /// 2^(m_old - m_new), which is also written there for the output.
    /// </summary>
    private static unsafe void PanelMaxExpSum(float* panel, int cols, float* max, float* sum, float* correction)
    {
        int nr = Gemm.PanelCols;
        if (nr == 2 * Vector512<float>.Count && Vector512.IsHardwareAccelerated)
        {
            PanelMaxExpSum<Width512, Vector512<float>>(panel, cols, max, sum, correction);
            return;
        }
        if (nr == 2 * Vector256<float>.Count && Vector256.IsHardwareAccelerated)
        {
            PanelMaxExpSum<Width256, Vector256<float>>(panel, cols, max, sum, correction);
            return;
        }
        for (int r = 0; r < nr; r++)
        {
            float old = max[r], m = old;
            for (int p = 0; p < cols; p++) m = Math.Max(m, panel[p * nr + r]);
            float s = sum[r];
            if (correction != null) { float c = float.Exp2(old - m); correction[r] = c; s *= c; }
            for (int p = 0; p < cols; p++)
            {
                float e = float.Exp2(panel[p * nr + r] - m);
                panel[p * nr + r] = e;
                s += e;
            }
            max[r] = m;
            sum[r] = s;
        }
    }

    /// <summary>The vector form of <see cref="PanelMaxExpSum(float*, int, float*, float*, float*)"/> for a panel two vectors wide.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void PanelMaxExpSum<TW, TV>(float* panel, int cols, float* max, float* sum, float* correction)
        where TW : struct, ISimdWidth<TV> where TV : struct
    {
        int w = TW.Lanes, nr = 2 * w;
        var old0 = TW.Load(max); var old1 = TW.Load(max + w);
        var m0 = old0; var m1 = old1;
        for (int p = 0; p < cols; p++)
        {
            m0 = TW.Max(m0, TW.Load(panel + p * nr));
            m1 = TW.Max(m1, TW.Load(panel + p * nr + w));
        }
        var s0 = TW.Load(sum); var s1 = TW.Load(sum + w);
        if (correction != null)
        {
            var c0 = TW.Exp2(TW.Subtract(old0, m0)); var c1 = TW.Exp2(TW.Subtract(old1, m1));
            TW.Store(c0, correction); TW.Store(c1, correction + w);
            s0 = TW.Multiply(s0, c0); s1 = TW.Multiply(s1, c1);
        }
        for (int p = 0; p < cols; p++)
        {
            float* x = panel + p * nr;
            var e0 = TW.Exp2(TW.Subtract(TW.Load(x), m0)); var e1 = TW.Exp2(TW.Subtract(TW.Load(x + w), m1));
            TW.Store(e0, x); TW.Store(e1, x + w);
            s0 = TW.Add(s0, e0); s1 = TW.Add(s1, e1);
        }
        TW.Store(m0, max); TW.Store(m1, max + w);
        TW.Store(s0, sum); TW.Store(s1, sum + w);
    }
}
