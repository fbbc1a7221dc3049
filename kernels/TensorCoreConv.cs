using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="TensorCoreConvKernels.Conv2d{TCore, TTile, TElem}"/>.</summary>
public struct TcConvParams
{
    /// <summary>Input channels, height and width; output channels, height and width.</summary>
    public int Cin, H, W, Cout, Ho, Wo;
    /// <summary>Kernel height and width, stride and padding.</summary>
    public int Kh, Kw, Stride, Padding;
    /// <summary>1: add bias[co].</summary>
    public int HasBias;
    /// <summary>
    /// 1: the input slab is a dense [Cin, Ho * Wo] matrix per image (1x1, stride 1, no padding, Ho * Wo a
    /// multiple of 8, input 16-byte aligned), staged with cp.async; 0: gathered element by element.
    /// </summary>
    public int Dense;
    /// <summary>
    /// 1: K runs tap-major, k = (ky, kx, ci), so the weight is [Cout, Kh, Kw, Cin] (a reordered copy of PyTorch's
    /// [Cout, Cin, Kh, Kw]; a 1x1 weight is both). Needs Cin a multiple of <see cref="TensorCoreConvKernels.BK"/>: every
    /// slab is then one tap and 32 consecutive channels, and a thread's 16 gathered values are one input position in
    /// channels 2 apart (<see cref="XGather.LoadTap"/>), where the (ci, ky, kx) walk costs tens of instructions per value.
    /// The tap gather addresses an image with 32-bit offsets: Cin H W must stay below 2^31.
    /// </summary>
    public int TapMajor;
    /// <summary>
    /// Blocks that share one output tile, each summing <see cref="SplitSlabs"/> K slabs of it into float32 partials
    /// (0 or 1: no split, the block stores the output). Convolutions with few output pixels (a UNet's 8x8 and 16x16
    /// levels) have too few tiles to fill the GPU and a long K (9 x 1280 or more): splitting K gives every
    /// multiprocessor blocks, and <see cref="TensorCoreConvKernels.ReduceSplits{TElem}"/> adds the partials and the bias.
    /// </summary>
    public int Splits;
    /// <summary>K slabs (of <see cref="TensorCoreConvKernels.BK"/>) per split.</summary>
    public int SplitSlabs;
    /// <summary>GEMM depth Cin * Kh * Kw (a multiple of 8).</summary>
    public readonly int K => Cin * Kh * Kw;
    /// <summary>Output pixels per image.</summary>
    public readonly int Pixels => Ho * Wo;
}

/// <summary>
/// Implicit-GEMM convolution on the tensor cores over NCHW tensors, as the engine stores activations:
/// out[n, co, p] = bias[co] + sum_k W[co, k] X_n[k, p], with k = (ci, ky, kx) in PyTorch's weight order,
/// so the weight [Cout, Cin, kh, kw] is the row-major A operand as it is stored. The gathered input is
/// the B operand: for a fixed k, consecutive output pixels p are consecutive (stride 1) or every other
/// (stride 2) input elements of one row, so the slab is staged k-major ([k][pixel], coalesced loads) and
/// <c>ldmatrix .trans</c> turns it into the column-major fragment. Accumulator pairs then lie along
/// pixels, the contiguous NCHW axis of the output. No layout conversion runs around the kernel: an
/// NHWC round trip would read and write the input and output once more each, as much traffic as a 1x1
/// convolution itself.
/// </summary>
public static class TensorCoreConvKernels
{
    /// <summary>Depth of a staged K slab.</summary>
    public const int BK = 32;

    /// <summary>Weight slab row stride in halves: 40 (80 bytes) keeps ldmatrix rows on distinct banks and 16-byte aligned.</summary>
    public const int WStride = BK + 8;

    /// <summary>
    /// The launch shape of block tile <typeparamref name="TTile"/> (BM output channels by BN output pixels): its
    /// WarpsM must be 2, so its threads are twice BN (each thread gathers one pixel column's rows of one parity). The
    /// input slab's rows are BN + 8 halves apart (72 or 136: 16-byte aligned, 8 consecutive k rows on distinct banks);
    /// the shared memory holds two stages of the weight and input slabs (19 KB at 64 x 64, 37 KB at 128 x 128).
    /// </summary>
    public static GemmBlockShape Shape<TTile>() where TTile : struct, IGemmBlock
    {
        var tile = default(TTile);
        int bm = tile.WarpsM * tile.WarpRows, bn = 32 * tile.WarpsN, threads = 32 * tile.WarpsM * tile.WarpsN;
        // Each thread stages two 8-half chunks of the weight slab and, dense, two of the input slab (StagePlan).
        if (tile.WarpsM != 2 || bm * BK / 8 != 2 * threads)
            throw new NotSupportedException($"Block tile {typeof(TTile).Name}: the convolution needs 2 warps along M and two weight chunks per thread.");
        return new GemmBlockShape(bm, bn, threads, 2 * (bm * WStride + BK * (bn + 8)));
    }

    /// <summary>
    /// Whether a convolution with <paramref name="pixels"/> output pixels per image takes <see cref="GemmBlock128"/>:
    /// when its tiles alone give every multiprocessor a block (as <see cref="TensorCoreGemmKernels.PrefersLargeBlock"/>).
    /// </summary>
    public static bool PrefersLargeBlock(int pixels, int cout, int images, int multiprocessors) =>
        TensorCoreGemmKernels.PrefersLargeBlock(cout, pixels, images, multiprocessors);

    /// <summary>
    /// One block computes BM output channels by BN pixels of one image (<see cref="Shape{TTile}"/>). Warp (wm, wn) of
    /// the 2 x WarpsN grid owns WarpRows channels by 32 pixels: two (or four) m16 by four n8 mma tiles. Weight slabs
    /// arrive by cp.async one stage ahead; the input slab of the next stage is loaded into registers before the
    /// current one is multiplied and stored to shared memory after it (or by cp.async in the dense 1x1 case).
    /// <para>Launch: grid (ceil(Ho Wo / BN), ceil(Cout / BM), N x splits), group Threads, SharedHalves halves of
    /// dynamic shared memory. Cin a multiple of 8; the weight 16-byte aligned. x, w and output hold
    /// <typeparamref name="TElem"/> bits (bf16 tensors are passed as their 16-bit views). With
    /// <see cref="TcConvParams.Splits"/> above 1, block z = image x splits + split writes its float32 sums to
    /// <paramref name="partial"/>[split, image, co, pixel] instead, without bias.</para>
    /// </summary>
    public static void Conv2d<TCore, TTile, TElem>(GlobalHalf x, GlobalHalf w, ArrayView<float> bias, ArrayView<float> partial, ArrayView<Half> output, TcConvParams p)
        where TCore : struct, ITensorCore where TTile : struct, IGemmBlock where TElem : struct, IMmaElement
    {
        var core = default(TCore);
        var tile = default(TTile);
        int warpsN = tile.WarpsN, warpRows = tile.WarpRows, bm = tile.WarpsM * warpRows, bn = 32 * warpsN;
        var l = new SlabLayout { BM = bm, BN = bn, Threads = 32 * tile.WarpsM * warpsN, XStride = bn + 8, StageHalves = bm * WStride + BK * (bn + 8) };
        var shared = SharedMemory.GetDynamic<ushort>();
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, wm = warp / warpsN, wn = warp - wm * warpsN;
        int splits = p.Splits > 1 ? p.Splits : 1, batch = Grid.IdxZ / splits, split = Grid.IdxZ - batch * splits;
        int co0 = Grid.IdxY * bm, p0 = Grid.IdxX * bn;
        int slabs = (p.K + BK - 1) / BK, first = 0;
        if (splits > 1)
        {
            first = split * p.SplitSlabs;
            slabs = first + p.SplitSlabs < slabs ? first + p.SplitSlabs : slabs;
        }
        // Gather: thread owns pixel column tid % BN and the k rows of parity tid / BN (uniform per warp).
        int column = tid % bn, parity = tid / bn;
        var gather = XGather.At(batch, p0 + column, parity, first * BK, p);

        var plan = StagePlan.Of(batch, co0, p0, tid, p, l);
        // Fragment addresses at slab depth 0 of stage 0. Input, transposed: matrix m = lane / 8 holds k rows 8 (m & 1)..
        // at pixels 8 (m >> 1).., so R0/R1 are the B fragment of one n8 tile and R2/R3 of the next. Weights: lanes 0-15
        // rows 0-15, lanes 16-31 the same rows 8 deeper (the A fragment).
        int m = lane >> 3;
        int xFrag = bm * WStride + ((lane & 7) + (m & 1) * 8) * l.XStride + wn * 32 + (m >> 1) * 8;
        int wFrag = (wm * warpRows + (lane & 15)) * WStride + (lane >> 4) * 8;

        // Stages alternate with j = s - first; the slab range may be empty for the last splits of a short K.
        StageW(core, shared, 0, w, co0, first * BK, tid, plan, p, l);
        if (p.Dense != 0) StageXDense(core, shared, 0, x, p0, first * BK, tid, plan, p, l);
        else StoreX(shared, 0, column, parity, gather.Load(x.View, first * BK, p), l);
        core.CpAsyncCommit();
        // acc: the warp's channels 0-31; low: channels 32-63 (64-row warps only).
        var acc = default(WarpTile);
        var low = default(WarpTile);
        var next = default(XColumn);
        for (int s = first; s < slabs; s++)
        {
            bool more = s + 1 < slabs;
            int j = s - first;
            // Slab s is in shared memory (its weights landed, its input stored last iteration) once every thread is
            // here, and every warp has finished slab s - 1, whose stage the next slab's copies and stores overwrite:
            // one barrier per slab.
            core.CpAsyncWaitAll();
            Group.Barrier();
            if (more)
            {
                StageW(core, shared, (j + 1) & 1, w, co0, (s + 1) * BK, tid, plan, p, l);
                if (p.Dense != 0) StageXDense(core, shared, (j + 1) & 1, x, p0, (s + 1) * BK, tid, plan, p, l);
                core.CpAsyncCommit();
                // The gathered input of the next slab is loaded into registers now and stored after the mma.
                if (p.Dense == 0) next = gather.Load(x.View, (s + 1) * BK, p);
            }
            // The slab's two k16 steps, written out (as the GEMM's: no loop to carry the accumulators through).
            int off = (j & 1) * l.StageHalves;
            KStep<TCore, TElem>(core, shared, off + wFrag, off + xFrag, warpRows, ref acc, ref low);
            KStep<TCore, TElem>(core, shared, off + wFrag + 16, off + xFrag + 16 * l.XStride, warpRows, ref acc, ref low);
            if (more && p.Dense == 0) StoreX(shared, (j + 1) & 1, column, parity, next, l);
        }
        int co = co0 + wm * warpRows + (lane >> 2), px = p0 + wn * 32 + 2 * (lane & 3);
        long outBase = (long)batch * p.Cout * p.Pixels;
        long partBase = (long)split * (Grid.DimZ / splits) * p.Cout * p.Pixels + outBase;
        StoreWarpTile<TCore, TElem>(core, acc, co, px, splits > 1, bias, output, outBase, partial, partBase, p);
        if (warpRows == 64) StoreWarpTile<TCore, TElem>(core, low, co + 32, px, splits > 1, bias, output, outBase, partial, partBase, p);
    }

    /// <summary>Sizes of one block's slabs (see <see cref="Shape{TTile}"/>), passed to the staging helpers.</summary>
    private struct SlabLayout
    {
        public int BM, BN, Threads, XStride, StageHalves;
    }

    /// <summary>One 32 x 32 warp tile: channels from <paramref name="co"/> (the lane's group row), pixels from <paramref name="px"/>.</summary>
    private static void StoreWarpTile<TCore, TElem>(TCore core, WarpTile acc, int co, int px, bool split, ArrayView<float> bias, ArrayView<Half> output,
        long outBase, ArrayView<float> partial, long partBase, TcConvParams p) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        int lane = Warp.LaneIdx, firstCo = co - (lane >> 2), firstPx = px - 2 * (lane & 3);
        if (!split && firstCo + 32 <= p.Cout && firstPx + 32 <= p.Pixels && (p.Pixels & 1) == 0)
        {
            // A warp tile inside the output: no bounds checks, the bias read once per channel, and each lane's pixel
            // pair (even, as Ho Wo is) one 32-bit store.
            var pairs = output.Cast<uint>();
            long at = (outBase + (long)co * p.Pixels + px) >> 1, down8 = 4L * p.Pixels, down16 = 8L * p.Pixels;
            float b0 = Bias(bias, co, p), b8 = Bias(bias, co + 8, p), b16 = Bias(bias, co + 16, p), b24 = Bias(bias, co + 24, p);
            PairTile<TCore, TElem>(core, acc.T0, b0, b8, at, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T1, b0, b8, at + 4, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T2, b0, b8, at + 8, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T3, b0, b8, at + 12, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T4, b16, b24, at + down16, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T5, b16, b24, at + down16 + 4, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T6, b16, b24, at + down16 + 8, down8, pairs);
            PairTile<TCore, TElem>(core, acc.T7, b16, b24, at + down16 + 12, down8, pairs);
            return;
        }
        if (split)
        {
            StorePartial(acc.T0, co, px, partial, partBase, p);
            StorePartial(acc.T1, co, px + 8, partial, partBase, p);
            StorePartial(acc.T2, co, px + 16, partial, partBase, p);
            StorePartial(acc.T3, co, px + 24, partial, partBase, p);
            StorePartial(acc.T4, co + 16, px, partial, partBase, p);
            StorePartial(acc.T5, co + 16, px + 8, partial, partBase, p);
            StorePartial(acc.T6, co + 16, px + 16, partial, partBase, p);
            StorePartial(acc.T7, co + 16, px + 24, partial, partBase, p);
            return;
        }
        Store<TElem>(acc.T0, co, px, bias, output, outBase, p);
        Store<TElem>(acc.T1, co, px + 8, bias, output, outBase, p);
        Store<TElem>(acc.T2, co, px + 16, bias, output, outBase, p);
        Store<TElem>(acc.T3, co, px + 24, bias, output, outBase, p);
        Store<TElem>(acc.T4, co + 16, px, bias, output, outBase, p);
        Store<TElem>(acc.T5, co + 16, px + 8, bias, output, outBase, p);
        Store<TElem>(acc.T6, co + 16, px + 16, bias, output, outBase, p);
        Store<TElem>(acc.T7, co + 16, px + 24, bias, output, outBase, p);
    }

    /// <summary>
    /// One k16 step of a warp: weight (A) fragments at <paramref name="wAt"/> (its rows) and input (B) fragments at
    /// <paramref name="xAt"/> (pixels 0-15, then 16-31), shared-memory offsets of the lane's ldmatrix row.
    /// </summary>
    private static void KStep<TCore, TElem>(TCore core, ArrayView<ushort> shared, int wAt, int xAt, int warpRows, ref WarpTile acc, ref WarpTile low)
        where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var b01 = core.LdMatrixX4Trans(shared, xAt);
        var b23 = core.LdMatrixX4Trans(shared, xAt + 16);
        TensorCoreGemmKernels.MultiplyWarpRows<TCore, TElem>(core, shared, wAt, WStride, warpRows, b01, b23, ref acc, ref low);
    }

    /// <summary>
    /// A thread's share of the cp.async staging: two 8-half chunks of the BM x BK weight slab, in rows tid / 4 and
    /// tid / 4 + threads / 4 at depth 8 (tid % 4), and in the dense 1x1 case two of the BK x BN input slab, in channel
    /// rows r and r + 16 at pixel column c (tid = r BN / 8 + c / 8). The 64-bit offsets of the first chunks at slab
    /// depth 0 are worked out once per block; each slab adds its depth (computing the offsets per slab in a loop over
    /// the chunks took some 80 instructions per thread). The rest is recomputed from tid, which costs fewer
    /// instructions than the registers to keep it would cost occupancy.
    /// </summary>
    private struct StagePlan
    {
        /// <summary>Element offsets of the first weight chunk and the first input chunk at slab depth 0.</summary>
        public long W0, X0;

        public static StagePlan Of(int batch, int co0, int p0, int tid, TcConvParams p, SlabLayout l)
        {
            int rowChunks = l.BN / 8, xRow = tid / rowChunks;
            return new StagePlan
            {
                W0 = (long)(co0 + (tid >> 2)) * p.K + (tid & 3) * 8,
                X0 = ((long)batch * p.Cin + xRow) * p.Pixels + p0 + (tid - xRow * rowChunks) * 8,
            };
        }
    }

    // The weight slab at depth k0: two chunks per thread (rows past Cout and depths past K zero-filled).
    private static void StageW<TCore>(TCore core, ArrayView<ushort> shared, int stage, GlobalHalf w, int co0, int k0, int tid, StagePlan plan,
        TcConvParams p, SlabLayout l) where TCore : struct, ITensorCore
    {
        int row = tid >> 2, kIn = (tid & 3) * 8, step = l.Threads / 4;
        int at = stage * l.StageHalves + row * WStride + kIn;
        bool depthOk = k0 + kIn < p.K;
        core.CpAsync16(shared, at, w, plan.W0 + k0, depthOk & co0 + row < p.Cout);
        core.CpAsync16(shared, at + step * WStride, w, plan.W0 + (long)step * p.K + k0, depthOk & co0 + row + step < p.Cout);
    }

    // Dense 1x1: slab row r is input channel k0 + r, BN contiguous pixels = BN / 8 chunks; two chunks per thread, 16 rows apart.
    private static void StageXDense<TCore>(TCore core, ArrayView<ushort> shared, int stage, GlobalHalf x, int p0, int k0, int tid, StagePlan plan,
        TcConvParams p, SlabLayout l) where TCore : struct, ITensorCore
    {
        int rowChunks = l.BN / 8, r = tid / rowChunks, col = (tid - r * rowChunks) * 8;
        int at = stage * l.StageHalves + l.BM * WStride + r * l.XStride + col;
        long first = plan.X0 + (long)k0 * p.Pixels;
        bool colOk = p0 + col < p.Pixels;
        core.CpAsync16(shared, at, x, first, colOk & k0 + r < p.Cin);
        core.CpAsync16(shared, at + 16 * l.XStride, x, first + 16L * p.Pixels, colOk & k0 + r + 16 < p.Cin);
    }

    // Rows parity, parity + 2, ..., parity + 30 of one pixel column: XColumn.R{i} holds rows parity + 4i (low) and parity + 4i + 2 (high).
    private static void StoreX(ArrayView<ushort> shared, int stage, int column, int parity, XColumn c, SlabLayout l)
    {
        int at = stage * l.StageHalves + l.BM * WStride + parity * l.XStride + column, step = 2 * l.XStride;
        Put2(shared, at, step, c.R0);
        Put2(shared, at + 2 * step, step, c.R1);
        Put2(shared, at + 4 * step, step, c.R2);
        Put2(shared, at + 6 * step, step, c.R3);
        Put2(shared, at + 8 * step, step, c.R4);
        Put2(shared, at + 10 * step, step, c.R5);
        Put2(shared, at + 12 * step, step, c.R6);
        Put2(shared, at + 14 * step, step, c.R7);
    }

    private static void Put2(ArrayView<ushort> shared, int at, int step, uint pair)
    {
        shared[at] = (ushort)pair;
        shared[at + step] = (ushort)(pair >> 16);
    }

    private static float Bias(ArrayView<float> bias, int co, TcConvParams p) => p.HasBias != 0 ? bias[co] : 0f;

    // One mma tile of an interior warp tile: the lane's pixel pairs (C0, C1) of channel row g at pair index `at` and
    // (C2, C3) 8 channels down, each rounded by one cvt.rn (the round-to-nearest-even of IMmaElement.Round).
    private static void PairTile<TCore, TElem>(TCore core, MmaAcc c, float bTop, float bBottom, long at, long down8, ArrayView<uint> pairs)
        where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var e = default(TElem);
        pairs[at] = e.Pack(core, c.C0 + bTop, c.C1 + bTop);
        pairs[at + down8] = e.Pack(core, c.C2 + bBottom, c.C3 + bBottom);
    }

    private static void Store<TElem>(MmaAcc c, int co, int px, ArrayView<float> bias, ArrayView<Half> output, long outBase, TcConvParams p)
        where TElem : struct, IMmaElement
    {
        Put<TElem>(c.C0, co, px, bias, output, outBase, p);
        Put<TElem>(c.C1, co, px + 1, bias, output, outBase, p);
        Put<TElem>(c.C2, co + 8, px, bias, output, outBase, p);
        Put<TElem>(c.C3, co + 8, px + 1, bias, output, outBase, p);
    }

    private static void StorePartial(MmaAcc c, int co, int px, ArrayView<float> partial, long partBase, TcConvParams p)
    {
        PutPartial(c.C0, co, px, partial, partBase, p);
        PutPartial(c.C1, co, px + 1, partial, partBase, p);
        PutPartial(c.C2, co + 8, px, partial, partBase, p);
        PutPartial(c.C3, co + 8, px + 1, partial, partBase, p);
    }

    private static void PutPartial(float v, int co, int px, ArrayView<float> partial, long partBase, TcConvParams p)
    {
        if (co >= p.Cout || px >= p.Pixels) return;
        partial[partBase + (long)co * p.Pixels + px] = v;
    }

    /// <summary>
    /// Output element <paramref name="index"/> of a split convolution: the sum of its <see cref="TcConvParams.Splits"/>
    /// float32 partials (split by split, the same order every time) plus the bias, rounded once to
    /// <typeparamref name="TElem"/>. <paramref name="count"/> = N x Cout x Ho Wo, the stride between splits.
    /// </summary>
    public static void ReduceSplits<TElem>(Index1D index, ArrayView<float> partial, ArrayView<float> bias, ArrayView<Half> output, TcConvParams p, long count)
        where TElem : struct, IMmaElement
    {
        float sum = 0f;
        for (int s = 0; s < p.Splits; s++) sum += partial[s * count + index];
        int co = (int)((index / p.Pixels) % p.Cout);
        float y = sum + Bias(bias, co, p);
        output[index] = Interop.IntAsFloat(default(TElem).Round(y));
    }

    private static void Put<TElem>(float v, int co, int px, ArrayView<float> bias, ArrayView<Half> output, long outBase, TcConvParams p)
        where TElem : struct, IMmaElement
    {
        if (co >= p.Cout || px >= p.Pixels) return;
        float y = v + Bias(bias, co, p);
        output[outBase + (long)co * p.Pixels + px] = Interop.IntAsFloat(default(TElem).Round(y));
    }
}

/// <summary>Sixteen gathered 16-bit input values of one pixel column, two per register.</summary>
public struct XColumn
{
    /// <summary>Rows 4i (low half) and 4i + 2 (high half) of the thread's parity.</summary>
    public uint R0, R1, R2, R3, R4, R5, R6, R7;
}

/// <summary>
/// One thread's walk down the k rows of its output pixel: k = (ci, ky, kx) advanced two rows at a time, so a
/// slab costs two divisions per thread rather than two per element; zero outside the image and past K. With K
/// tap-major (<see cref="LoadTap"/>) the walk moves a slab at a time, with no division after the first slab.
/// </summary>
public struct XGather
{
    /// <summary>First element of the image; top-left input coordinate of the pixel's window.</summary>
    public long Base;
    /// <summary>Input row and column of tap (0, 0); 1 when the pixel exists.</summary>
    public int Iy0, Ix0, Valid, Parity;
    /// <summary>The current k and its decomposition (tap-major: Ci the slab's first channel).</summary>
    public int K, Ci, Ky, Kx;

    /// <summary>
    /// The walk of output pixel <paramref name="pixel"/> of image <paramref name="batch"/> over rows of <paramref name="parity"/>,
    /// whose first slab starts at <paramref name="k0"/>.
    /// </summary>
    public static XGather At(int batch, int pixel, int parity, int k0, TcConvParams p)
    {
        int oy = pixel / p.Wo, ox = pixel - oy * p.Wo;
        var gather = new XGather
        {
            Base = (long)batch * p.Cin * p.H * p.W, Iy0 = oy * p.Stride - p.Padding, Ix0 = ox * p.Stride - p.Padding,
            Valid = pixel < p.Pixels ? 1 : 0, Parity = parity,
        };
        if (p.TapMajor != 0) gather.StartTap(k0, p);
        return gather;
    }

    /// <summary>
    /// Rows parity, parity + 2, ..., parity + 30 of the slab starting at <paramref name="k0"/> (slabs in order from the
    /// one <see cref="At"/> was given): <see cref="LoadTap"/> when K runs tap-major, else the (ci, ky, kx) walk.
    /// </summary>
    public XColumn Load(ArrayView<Half> x, int k0, TcConvParams p) => p.TapMajor != 0 ? LoadTap(x, p) : LoadWalk(x, k0, p);

    private XColumn LoadWalk(ArrayView<Half> x, int k0, TcConvParams p)
    {
        K = k0 + Parity;
        int taps = p.Kh * p.Kw;
        Ci = K / taps;
        int rem = K - Ci * taps;
        Ky = rem / p.Kw;
        Kx = rem - Ky * p.Kw;
        var c = default(XColumn);
        c.R0 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R1 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R2 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R3 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R4 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R5 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R6 = Take(x, p) | ((uint)Take(x, p) << 16);
        c.R7 = Take(x, p) | ((uint)Take(x, p) << 16);
        return c;
    }

    // Positions the tap-major walk (LoadTap) at the slab starting at k0: its only divisions.
    private void StartTap(int k0, TcConvParams p)
    {
        int tap = k0 / p.Cin;
        Ci = k0 - tap * p.Cin;
        Ky = tap / p.Kw;
        Kx = tap - Ky * p.Kw;
    }

    /// <summary>
    /// The next slab when K runs tap-major (<see cref="TcConvParams.TapMajor"/>): the slab's tap (ky, kx) and first
    /// channel c0 give one input position, inside the image or not for all 16 values, and the values are channels
    /// c0 + parity + 2i of it, 2 H W elements apart. Zero outside the image and for pixels past the output. Then steps
    /// to the next slab: 32 channels on, or the next tap.
    /// </summary>
    private XColumn LoadTap(ArrayView<Half> x, TcConvParams p)
    {
        int iy = Iy0 + Ky, ix = Ix0 + Kx, c0 = Ci;
        Ci += TensorCoreConvKernels.BK;
        if (Ci == p.Cin)
        {
            Ci = 0;
            if (++Kx == p.Kw)
            {
                Kx = 0;
                Ky++;
            }
        }
        var c = default(XColumn);
        if (Valid == 0 || (uint)iy >= (uint)p.H || (uint)ix >= (uint)p.W) return c;
        // 32-bit offsets within the image (the route keeps Cin H W below 2^31): each address is one wide multiply-add
        // off the image's base, where 64-bit offsets from the tensor's start took several instructions each.
        int plane = p.H * p.W, at = (c0 + Parity) * plane + iy * p.W + ix;
        var image = x.SubView(Base, (long)p.Cin * plane);
        c.R0 = Pair(image, at, plane);
        c.R1 = Pair(image, at + 4 * plane, plane);
        c.R2 = Pair(image, at + 8 * plane, plane);
        c.R3 = Pair(image, at + 12 * plane, plane);
        c.R4 = Pair(image, at + 16 * plane, plane);
        c.R5 = Pair(image, at + 20 * plane, plane);
        c.R6 = Pair(image, at + 24 * plane, plane);
        c.R7 = Pair(image, at + 28 * plane, plane);
        return c;
    }

    // Channel rows r (low half) and r + 2 (high half) at one input position of the image.
    private static uint Pair(ArrayView<Half> image, int at, int plane) => Interop.FloatAsInt(image[at]) | ((uint)Interop.FloatAsInt(image[at + 2 * plane]) << 16);

    // The load always reads a valid address (element 0 when outside), so no branch guards it.
    private uint Take(ArrayView<Half> x, TcConvParams p)
    {
        int iy = Iy0 + Ky, ix = Ix0 + Kx;
        bool inside = Valid != 0 && K < p.K && (uint)iy < (uint)p.H && (uint)ix < (uint)p.W;
        long at = inside ? Base + ((long)Ci * p.H + iy) * p.W + ix : 0;
        uint v = Interop.FloatAsInt(x[at]);
        K += 2;
        Kx += 2;
        while (Kx >= p.Kw) { Kx -= p.Kw; Ky++; }
        while (Ky >= p.Kh) { Ky -= p.Kh; Ci++; }
        return inside ? v : 0u;
    }
}
