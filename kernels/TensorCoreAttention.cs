using ILGPU;
using ILGPU.Algorithms;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="TensorCoreAttentionKernels.FlashAttention{TCore, TElem, TDim}"/>.</summary>
public struct TcAttentionParams
{
    /// <summary>Query and key/value sequence lengths, heads, head width (a multiple of 8, at most 160) and row width (heads x head width).</summary>
    public int Lq, Lk, Heads, HeadDim, Width;
    /// <summary>Softmax scale times log2(e), positive: scores are taken in base 2, their row maxima before scaling.</summary>
    public float ScaleLog2;
    /// <summary>1: query i sees keys j &lt;= i + Lk - Lq only (text encoders).</summary>
    public int Causal;
}

/// <summary>
/// The head width a flash-attention kernel is compiled for: a constant lets the compilers unroll the depth loops and
/// drop the branches over the output tiles. <see cref="AnyHeadDim"/> (0) reads the width from the launch parameters.
/// </summary>
public interface IHeadDim
{
    /// <summary>The head width, or 0 for the one in <see cref="TcAttentionParams.HeadDim"/>.</summary>
    int Dim { get; }

    /// <summary>
    /// Blocks of <see cref="TensorCoreAttentionKernels.Threads"/> that the CUDA loader asks ptxas to fit on one multiprocessor
    /// (<c>.minnctapersm</c>), so a register or two more than the width needs does not cost a block; 0 for no bound. Each
    /// value is the occupancy ptxas 11.8 reaches for that width without spilling on SM 8.0 and 9.0 (d 80 fits five blocks
    /// unbounded, and spilled under the bound on SM 9.0).
    /// </summary>
    int MinBlocksPerMultiprocessor { get; }
}

/// <summary>Any head width that is a multiple of 8 up to 160, read at run time.</summary>
public struct AnyHeadDim : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 0;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 0;
}
/// <summary>Head width 40 (SD 1.x's 320-channel level: 8 heads).</summary>
public struct HeadDim40 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 40;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 6;
}
/// <summary>Head width 64 (SD 2.x, SDXL, SD3, the text encoders).</summary>
public struct HeadDim64 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 64;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 5;
}
/// <summary>Head width 72 (DiT-XL: 1152 channels, 16 heads).</summary>
public struct HeadDim72 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 72;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 5;
}
/// <summary>Head width 80 (SD 1.x's 640-channel level).</summary>
public struct HeadDim80 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 80;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 0;
}
/// <summary>Head width 128.</summary>
public struct HeadDim128 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 128;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 4;
}
/// <summary>Head width 160 (SD 1.x's 1280-channel level).</summary>
public struct HeadDim160 : IHeadDim
{
    /// <inheritdoc />
    public readonly int Dim => 160;

    /// <inheritdoc />
    public readonly int MinBlocksPerMultiprocessor => 3;
}

/// <summary>Builds something (a loaded kernel, a timing) for a head-width type; see <see cref="TensorCoreAttentionKernels.ForHeadDim"/>.</summary>
public interface IHeadDimVisitor<out TResult>
{
    /// <summary>The result for head-width type <typeparamref name="TDim"/>.</summary>
    TResult Visit<TDim>() where TDim : struct, IHeadDim;
}

/// <summary>
/// FlashAttention-2 on tensor cores: a warp owns 16 query rows; per 32-key block it computes the 16 x 32
/// scores with mma (Q and K from shared memory via ldmatrix), keeps the online-softmax statistics in
/// registers (quad shuffles), turns the score accumulators directly into the A fragments of P V (packed
/// to the element type), and accumulates the output in an <see cref="OutputTile"/>. K and V blocks are staged with
/// cp.async one block ahead. exp2 with the scale folded into the scores. f16 or bf16 in and out
/// (<see cref="IMmaElement"/>), fp32 accumulation and softmax statistics.
/// </summary>
public static class TensorCoreAttentionKernels
{
    /// <summary>Query rows per block (4 warps x 16), keys per block, threads.</summary>
    public const int Rows = 64, Keys = 32, Threads = 128;

    /// <summary>
    /// Calls <paramref name="visitor"/> with the head-width type compiled for <paramref name="d"/>: 40, 64, 72, 80, 128 and
    /// 160 have their own, other widths <see cref="AnyHeadDim"/>.
    /// </summary>
    public static TResult ForHeadDim<TResult>(int d, IHeadDimVisitor<TResult> visitor) => d switch
    {
        40 => visitor.Visit<HeadDim40>(),
        64 => visitor.Visit<HeadDim64>(),
        72 => visitor.Visit<HeadDim72>(),
        80 => visitor.Visit<HeadDim80>(),
        128 => visitor.Visit<HeadDim128>(),
        160 => visitor.Visit<HeadDim160>(),
        _ => visitor.Visit<AnyHeadDim>(),
    };

    /// <summary>Head width padded to the mma depth (16).</summary>
    public static int PaddedDim(int d) => (d + 15) / 16 * 16;

    /// <summary>Row stride in halves of the Q / K tiles (padded width + 8) and of the V tile (d + 8).</summary>
    public static int QkStride(int d) => PaddedDim(d) + 8;

    /// <summary>Dynamic shared memory in halves: Q [64, QkStride], K [2][32, QkStride], V [2][32, d + 8].</summary>
    public static int SharedHalves(int d) => Rows * QkStride(d) + 2 * Keys * QkStride(d) + 2 * Keys * (d + 8);

    /// <summary>
    /// out = softmax(q k^T scale [+ causal mask]) v per (batch, head) for [B, L, heads x d] tensors.
    /// <para>Launch: grid (ceil(Lq / 64), B x heads), group 128, <see cref="SharedHalves"/>(d) halves of dynamic
    /// shared memory (27 KB at d = 64, 51 KB at d = 128, 63 KB at d = 160: above 48 KB the launch needs the
    /// opt-in). d a multiple of 8, at most 160, and equal to <typeparamref name="TDim"/>'s width unless that is
    /// <see cref="AnyHeadDim"/>; rows 16-byte aligned (Width a multiple of 8).</para>
    /// </summary>
    public static void FlashAttention<TCore, TElem, TDim>(GlobalHalf q, GlobalHalf k, GlobalHalf v, ArrayView<Half> output, TcAttentionParams p)
        where TCore : struct, ITensorCore where TElem : struct, IMmaElement where TDim : struct, IHeadDim
    {
        var core = default(TCore);
        var element = default(TElem);
        var shared = SharedMemory.GetDynamic<ushort>();
        int d = default(TDim).Dim > 0 ? default(TDim).Dim : p.HeadDim, dk = PaddedDim(d), qs = dk + 8, vs = d + 8, chunks = d / 8;
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
        int q0 = Grid.IdxX * Rows, bh = Grid.IdxY, b = bh / p.Heads, h = bh - b * p.Heads;
        int kOff = Rows * qs, vOff = kOff + 2 * Keys * qs;
        long qBase = (long)b * p.Lq * p.Width + (long)h * d, kBase = (long)b * p.Lk * p.Width + (long)h * d;

        // Q once (rows past Lq zero), and zeros in the depth padding of Q and both K stages.
        for (int c = tid; c < Rows * chunks; c += Threads)
        {
            int r = c / chunks, e = (c - r * chunks) * 8;
            core.CpAsync16(shared, r * qs + e, q, qBase + (long)(q0 + r) * p.Width + e, q0 + r < p.Lq);
        }
        for (int e = tid; e < (Rows + 2 * Keys) * (dk - d); e += Threads)
        {
            int r = e / (dk - d), col = d + e - r * (dk - d);
            shared[(r < Rows ? r * qs : kOff + (r - Rows) * qs) + col] = 0;
        }
        int blocks = (p.Lk + Keys - 1) / Keys;
        if (p.Causal != 0)
        {
            int lastKey = q0 + Rows - 1 + p.Lk - p.Lq;
            int needed = lastKey < 0 ? 0 : lastKey / Keys + 1;
            blocks = needed < blocks ? needed : blocks;
        }
        var walk = new ChunkWalk(tid, chunks);
        StageKv(core, shared, 0, k, v, kBase, 0, kOff, vOff, qs, vs, walk, p);
        core.CpAsyncCommit();

        var o = default(OutputTile);
        float mTop = float.NegativeInfinity, mBottom = float.NegativeInfinity, lTop = 0f, lBottom = 0f;
        int warpRow0 = q0 + warp * 16, rowTop = warpRow0 + g, rowBottom = rowTop + 8;
        // The lane's ldmatrix rows: Q rows of the warp (lanes 16-31 the upper 8 columns), K rows (lanes 8-15 and 24-31 the upper 8 columns).
        int qRow = (warp * 16 + (lane & 15)) * qs + (lane >> 4) * 8, kRow = ((lane & 7) + (lane >> 4) * 8) * qs + ((lane >> 3) & 1) * 8;
        float scale = p.ScaleLog2;
        for (int kb = 0; kb < blocks; kb++)
        {
            // Key block kb has landed for every thread once all are here, and every warp has finished block kb - 1,
            // whose stage the next block's copies overwrite: one barrier per key block.
            core.CpAsyncWaitAll();
            Group.Barrier();
            if (kb + 1 < blocks)
            {
                StageKv(core, shared, (kb + 1) & 1, k, v, kBase, (kb + 1) * Keys, kOff, vOff, qs, vs, walk, p);
                core.CpAsyncCommit();
            }
            int ks = kOff + (kb & 1) * Keys * qs, vsOff = vOff + (kb & 1) * Keys * vs;

            // S = Q K^T for 16 rows x 32 keys: four n8 tiles of 8 keys, one 16-deep step per constant depth offset (the
            // ldmatrix addresses are then a base plus an immediate; steps past the padded width are skipped, a branch
            // that a specialised head width folds away).
            MmaAcc s0 = default, s1 = default, s2 = default, s3 = default;
            var qk = new QkStep { Shared = shared, QRow = qRow, KRow = ks + kRow, KRow16 = ks + kRow + 16 * qs };
            Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 0);
            if (dk > 16) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 16);
            if (dk > 32) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 32);
            if (dk > 48) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 48);
            if (dk > 64) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 64);
            if (dk > 80) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 80);
            if (dk > 96) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 96);
            if (dk > 112) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 112);
            if (dk > 128) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 128);
            if (dk > 144) Qk<TCore, TElem>(core, ref s0, ref s1, ref s2, ref s3, qk, 144);
            // Only the blocks that cut Lk or the causal diagonal of this warp's rows are masked (a warp-uniform branch):
            // interior blocks go straight to the maxima.
            int blockEnd = (kb + 1) * Keys;
            if (blockEnd > p.Lk || (p.Causal != 0 && blockEnd - 1 > warpRow0 + p.Lk - p.Lq))
            {
                int key0 = kb * Keys + 2 * t;
                Mask(ref s0, key0, rowTop, rowBottom, p);
                Mask(ref s1, key0 + 8, rowTop, rowBottom, p);
                Mask(ref s2, key0 + 16, rowTop, rowBottom, p);
                Mask(ref s3, key0 + 24, rowTop, rowBottom, p);
            }

            // Row maxima over the quad (the 4 lanes sharing rows g and g + 8).
            float top = Max4(s0.C0, s0.C1, s1.C0, s1.C1, s2.C0, s2.C1, s3.C0, s3.C1);
            float bottom = Max4(s0.C2, s0.C3, s1.C2, s1.C3, s2.C2, s2.C3, s3.C2, s3.C3);
            top = XMath.Max(top, Warp.ShuffleXor(top, 1));
            top = XMath.Max(top, Warp.ShuffleXor(top, 2));
            bottom = XMath.Max(bottom, Warp.ShuffleXor(bottom, 1));
            bottom = XMath.Max(bottom, Warp.ShuffleXor(bottom, 2));
            float nTop = XMath.Max(mTop, top), nBottom = XMath.Max(mBottom, bottom);
            // The maxima are of raw scores; p = exp2(s c - m c) with c = scale log2(e) > 0, one FFMA per score. A row
            // with every key so far masked keeps m = -inf: its scores give p = 0, not NaN.
            float refTop = nTop == float.NegativeInfinity ? 0f : nTop * scale, refBottom = nBottom == float.NegativeInfinity ? 0f : nBottom * scale;
            float aTop = core.Exp2(mTop * scale - refTop), aBottom = core.Exp2(mBottom * scale - refBottom);
            mTop = nTop;
            mBottom = nBottom;
            Exp(core, ref s0, scale, refTop, refBottom);
            Exp(core, ref s1, scale, refTop, refBottom);
            Exp(core, ref s2, scale, refTop, refBottom);
            Exp(core, ref s3, scale, refTop, refBottom);
            lTop = lTop * aTop + s0.C0 + s0.C1 + s1.C0 + s1.C1 + s2.C0 + s2.C1 + s3.C0 + s3.C1;
            lBottom = lBottom * aBottom + s0.C2 + s0.C3 + s1.C2 + s1.C3 + s2.C2 + s2.C3 + s3.C2 + s3.C3;
            o.Rescale(aTop, aBottom, chunks);

            // P as A fragments (keys 0-15 from tiles 0, 1; keys 16-31 from tiles 2, 3), times V.
            var pa0 = new FragA { R0 = element.Pack(core, s0.C0, s0.C1), R1 = element.Pack(core, s0.C2, s0.C3), R2 = element.Pack(core, s1.C0, s1.C1), R3 = element.Pack(core, s1.C2, s1.C3) };
            var pa1 = new FragA { R0 = element.Pack(core, s2.C0, s2.C1), R1 = element.Pack(core, s2.C2, s2.C3), R2 = element.Pack(core, s3.C0, s3.C1), R3 = element.Pack(core, s3.C2, s3.C3) };
            // The head's 8-column tiles two at a time, each pair at a constant tile index: a loop index would pick the
            // accumulator through OutputTile's 20-way switches at every mma. Pairs past the head width are skipped
            // (a uniform branch).
            int vKey = (lane & 7) + ((lane >> 3) & 1) * 8;
            var pv = new PvStep { Shared = shared, VsOff = vsOff, Vs = vs, VKey = vKey, Lane = lane, Chunks = chunks, A0 = pa0, A1 = pa1 };
            PvPair<TCore, TElem>(core, ref o, 0, pv);
            if (chunks > 2) PvPair<TCore, TElem>(core, ref o, 2, pv);
            if (chunks > 4) PvPair<TCore, TElem>(core, ref o, 4, pv);
            if (chunks > 6) PvPair<TCore, TElem>(core, ref o, 6, pv);
            if (chunks > 8) PvPair<TCore, TElem>(core, ref o, 8, pv);
            if (chunks > 10) PvPair<TCore, TElem>(core, ref o, 10, pv);
            if (chunks > 12) PvPair<TCore, TElem>(core, ref o, 12, pv);
            if (chunks > 14) PvPair<TCore, TElem>(core, ref o, 14, pv);
            if (chunks > 16) PvPair<TCore, TElem>(core, ref o, 16, pv);
            if (chunks > 18) PvPair<TCore, TElem>(core, ref o, 18, pv);
        }

        // Row sums over the quad, then O / l.
        lTop += Warp.ShuffleXor(lTop, 1);
        lTop += Warp.ShuffleXor(lTop, 2);
        lBottom += Warp.ShuffleXor(lBottom, 1);
        lBottom += Warp.ShuffleXor(lBottom, 2);
        float invTop = lTop > 0f ? 1f / lTop : 0f, invBottom = lBottom > 0f ? 1f / lBottom : 0f;
        for (int j = 0; j < chunks; j++)
        {
            var c = o.Get(j);
            int col = h * d + j * 8 + 2 * t;
            if (rowTop < p.Lq)
            {
                long at = (long)b * p.Lq * p.Width + (long)rowTop * p.Width + col;
                output[at] = Round<TElem>(c.C0 * invTop);
                output[at + 1] = Round<TElem>(c.C1 * invTop);
            }
            if (rowBottom < p.Lq)
            {
                long at = (long)b * p.Lq * p.Width + (long)rowBottom * p.Width + col;
                output[at] = Round<TElem>(c.C2 * invBottom);
                output[at + 1] = Round<TElem>(c.C3 * invBottom);
            }
        }
    }

    /// <summary>Where one key block's Q K^T reads: the lane's ldmatrix row offsets of Q and of keys 0-15 and 16-31.</summary>
    private struct QkStep
    {
        public ArrayView<ushort> Shared;
        public int QRow, KRow, KRow16;
    }

    /// <summary>The scores += the 16-deep slice at depth <paramref name="kk"/> of Q K^T (called with constant kk).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void Qk<TCore, TElem>(TCore core, ref MmaAcc s0, ref MmaAcc s1, ref MmaAcc s2, ref MmaAcc s3, QkStep st, int kk)
        where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var element = default(TElem);
        var qa = core.LdMatrixX4(st.Shared, st.QRow + kk);
        var k01 = core.LdMatrixX4(st.Shared, st.KRow + kk);
        var k23 = core.LdMatrixX4(st.Shared, st.KRow16 + kk);
        element.Mma(core, ref s0, qa, new FragB { R0 = k01.R0, R1 = k01.R1 });
        element.Mma(core, ref s1, qa, new FragB { R0 = k01.R2, R1 = k01.R3 });
        element.Mma(core, ref s2, qa, new FragB { R0 = k23.R0, R1 = k23.R1 });
        element.Mma(core, ref s3, qa, new FragB { R0 = k23.R2, R1 = k23.R3 });
    }

    private static Half Round<TElem>(float x) where TElem : struct, IMmaElement => Interop.IntAsFloat(default(TElem).Round(x));

    /// <summary>What one key block's P V step reads: the staged V tile, the lane's ldmatrix row, the head's tiles and P's A fragments.</summary>
    private struct PvStep
    {
        public ArrayView<ushort> Shared;
        public int VsOff, Vs, VKey, Lane, Chunks;
        public FragA A0, A1;
    }

    /// <summary>
    /// Output tiles j and j + 1 += P V for the block's 32 keys (j even, below the head's tile count), or tile j alone when
    /// it is the last of an odd count (d = 40: ldmatrix .x2.trans, lanes 0-15 give the rows). Called with constant j.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void PvPair<TCore, TElem>(TCore core, ref OutputTile o, int j, PvStep s) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        if (j + 1 < s.Chunks)
        {
            int vCol = j * 8 + (s.Lane >> 4) * 8;
            var v0 = core.LdMatrixX4Trans(s.Shared, s.VsOff + s.VKey * s.Vs + vCol);
            var v1 = core.LdMatrixX4Trans(s.Shared, s.VsOff + (s.VKey + 16) * s.Vs + vCol);
            o.Mma<TCore, TElem>(core, j, s.A0, new FragB { R0 = v0.R0, R1 = v0.R1 });
            o.Mma<TCore, TElem>(core, j + 1, s.A0, new FragB { R0 = v0.R2, R1 = v0.R3 });
            o.Mma<TCore, TElem>(core, j, s.A1, new FragB { R0 = v1.R0, R1 = v1.R1 });
            o.Mma<TCore, TElem>(core, j + 1, s.A1, new FragB { R0 = v1.R2, R1 = v1.R3 });
            return;
        }
        core.LdMatrixX2Trans(s.Shared, s.VsOff + s.VKey * s.Vs + j * 8, out uint a0, out uint a1);
        core.LdMatrixX2Trans(s.Shared, s.VsOff + (s.VKey + 16) * s.Vs + j * 8, out uint b0, out uint b1);
        o.Mma<TCore, TElem>(core, j, s.A0, new FragB { R0 = a0, R1 = a1 });
        o.Mma<TCore, TElem>(core, j, s.A1, new FragB { R0 = b0, R1 = b1 });
    }

    private static float Max4(float a, float b, float c, float d, float e, float f, float g, float h) =>
        XMath.Max(XMath.Max(XMath.Max(a, b), XMath.Max(c, d)), XMath.Max(XMath.Max(e, f), XMath.Max(g, h)));

    // Keys past Lk, and under the causal mask, to -inf.
    private static void Mask(ref MmaAcc s, int key, int rowTop, int rowBottom, TcAttentionParams p)
    {
        int shift = p.Lk - p.Lq;
        if (!Visible(key, rowTop, shift, p)) s.C0 = float.NegativeInfinity;
        if (!Visible(key + 1, rowTop, shift, p)) s.C1 = float.NegativeInfinity;
        if (!Visible(key, rowBottom, shift, p)) s.C2 = float.NegativeInfinity;
        if (!Visible(key + 1, rowBottom, shift, p)) s.C3 = float.NegativeInfinity;
    }

    private static bool Visible(int key, int row, int shift, TcAttentionParams p) => key < p.Lk && (p.Causal == 0 || key <= row + shift);

    // p = exp2(s c - m c): the product and the difference as one FFMA, m c given per row.
    private static void Exp<TCore>(TCore core, ref MmaAcc s, float c, float top, float bottom) where TCore : struct, ITensorCore
    {
        s.C0 = core.Exp2(s.C0 * c - top);
        s.C1 = core.Exp2(s.C1 * c - top);
        s.C2 = core.Exp2(s.C2 * c - bottom);
        s.C3 = core.Exp2(s.C3 * c - bottom);
    }

    /// <summary>
    /// A thread's walk over the 16-byte chunks of a [Keys, d] tile: chunk c = tid + i Threads (i &lt; <see cref="Steps"/>)
    /// is row c / chunks, column (c % chunks) 8. The division is done once per kernel; each step adds Threads / chunks rows
    /// and Threads % chunks chunks with a carry. With a compiled head width every field but the start is a constant, so
    /// <see cref="StageKv{TCore}"/>'s written-out steps fold to straight-line code.
    /// </summary>
    private readonly struct ChunkWalk
    {
        public readonly int Row0, Col0, RowStep, ColStep, Width, Steps;

        /// <summary>Whether the steps cover the tile exactly (Threads divides its chunk count), so none falls past it.</summary>
        public readonly bool Exact;

        public ChunkWalk(int tid, int chunks)
        {
            Row0 = tid / chunks;
            Col0 = (tid - Row0 * chunks) * 8;
            RowStep = Threads / chunks;
            ColStep = (Threads - RowStep * chunks) * 8;
            Width = chunks * 8;
            Steps = (Keys * chunks + Threads - 1) / Threads;
            Exact = Keys * chunks % Threads == 0;
        }
    }

    /// <summary>
    /// This thread's cp.async copies of key block <paramref name="key0"/>'s K and V rows into <paramref name="stage"/>: one
    /// 64-bit row base per block, then a 32-bit offset per chunk (keys past Lk zero-filled). The steps are written out
    /// (at most five: d 160), so with a compiled head width they are straight-line code.
    /// </summary>
    private static void StageKv<TCore>(TCore core, ArrayView<ushort> shared, int stage, GlobalHalf k, GlobalHalf v, long kBase, int key0,
        int kOff, int vOff, int qs, int vs, ChunkWalk walk, TcAttentionParams p) where TCore : struct, ITensorCore
    {
        var block = new KvBlock
        {
            Shared = shared, K = k, V = v, Base = kBase + (long)key0 * p.Width, Key0 = key0, Lk = p.Lk, Width = p.Width,
            Ks = kOff + stage * Keys * qs, Vs = vOff + stage * Keys * vs, Qs = qs, VStride = vs,
        };
        int r = walk.Row0, e = walk.Col0;
        StageStep(core, block, walk, 0, ref r, ref e);
        StageStep(core, block, walk, 1, ref r, ref e);
        StageStep(core, block, walk, 2, ref r, ref e);
        StageStep(core, block, walk, 3, ref r, ref e);
        StageStep(core, block, walk, 4, ref r, ref e);
    }

    /// <summary>Where one key block is staged from and to.</summary>
    private struct KvBlock
    {
        public ArrayView<ushort> Shared;
        public GlobalHalf K, V;
        public long Base;
        public int Key0, Lk, Width, Ks, Vs, Qs, VStride;
    }

    /// <summary>
    /// Step <paramref name="i"/> (a constant) of the walk: the K and V chunk at row <paramref name="r"/>, column
    /// <paramref name="e"/>, then the walk moves on. Only the last step of an inexact walk can fall past the block's rows.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveInlining)]
    private static void StageStep<TCore>(TCore core, KvBlock b, ChunkWalk walk, int i, ref int r, ref int e) where TCore : struct, ITensorCore
    {
        if (i >= walk.Steps) return;
        if (i + 1 < walk.Steps || walk.Exact || r < Keys)
        {
            bool valid = b.Key0 + r < b.Lk;
            long src = b.Base + (r * b.Width + e);
            core.CpAsync16(b.Shared, b.Ks + r * b.Qs + e, b.K, src, valid);
            core.CpAsync16(b.Shared, b.Vs + r * b.VStride + e, b.V, src, valid);
        }
        r += walk.RowStep;
        e += walk.ColStep;
        // No carry where Threads is a multiple of the row's chunks (d 64, 128): the column never moves.
        if (walk.ColStep != 0 && e >= walk.Width)
        {
            e -= walk.Width;
            r++;
        }
    }
}
