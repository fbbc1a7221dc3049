using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="TensorCoreGemmKernels.Gemm{TCore, TTile, TA, TElem}"/>.</summary>
public struct TcGemmParams
{
    /// <summary>Output rows, weight rows (2 x the output columns with GEGLU) and depth.</summary>
    public int M, N, K;
    /// <summary>Elements between batch entries of A, of the weight (0: shared) and of the output / residual.</summary>
    public long StrideA, StrideW, StrideC;
    /// <summary>1: add bias[n]; 1: add residual[m, n] last; 1: GEGLU (weight rows [0, N/2) the value, [N/2, N) the gate).</summary>
    public int HasBias, HasResidual, Geglu;
    /// <summary>Activation after the bias (ignored with GEGLU, whose gate takes exact GELU).</summary>
    public Activation Activation;
    /// <summary>Scale of the product.</summary>
    public float Alpha;
    /// <summary>Output columns: N, or N / 2 with GEGLU.</summary>
    public readonly int OutColumns => Geglu != 0 ? N / 2 : N;
}

/// <summary>Where the A tile's 8-element chunks come from: a dense row-major matrix or a convolution's gathered input.</summary>
public interface ITileSourceA
{
    /// <summary>Element offset of A[batch][row][k .. k + 8) in the source, or -1 when the chunk is zero (outside the matrix or padding).</summary>
    long Chunk(int batch, int row, int k);

    /// <summary>
    /// True when a row's chunks lie k elements apart (<see cref="Chunk"/>(b, r, k) = <see cref="Chunk"/>(b, r, 0) + k for every
    /// k &lt; K of an existing row): the GEMM then computes each thread's chunk offsets once and adds the slab's depth.
    /// </summary>
    bool Linear { get; }
}

/// <summary>A dense [M, K] row-major matrix per batch entry (K a multiple of 8).</summary>
public struct DenseA : ITileSourceA
{
    /// <summary>Rows, depth and batch stride in elements.</summary>
    public int M, K;
    /// <summary>Elements between batch entries.</summary>
    public long Stride;

    /// <inheritdoc />
    public readonly long Chunk(int batch, int row, int k) => row < M && k < K ? batch * Stride + (long)row * K + k : -1;

    /// <inheritdoc />
    public readonly bool Linear => true;
}

/// <summary>
/// A 3 x 3 (or any kh x kw) convolution's implicit-GEMM operand over a channels-last input [N, H, W, Cin]
/// (Cin a multiple of 8): row m = (oy, ox), k = (ky, kx, ci), zero outside the image. The weight is
/// [Cout, kh, kw, Cin], so the product is out[N, Ho * Wo, Cout] (channels-last).
/// </summary>
public struct ConvA : ITileSourceA
{
    /// <summary>Input channels, height and width.</summary>
    public int Cin, H, W;
    /// <summary>Kernel width, output width, stride, padding and output pixels (Ho * Wo).</summary>
    public int Kw, Wo, Stride, Padding, Pixels;
    /// <summary>Depth kh * kw * Cin.</summary>
    public int K;

    /// <inheritdoc />
    public readonly long Chunk(int batch, int row, int k)
    {
        if (row >= Pixels || k >= K) return -1;
        int tap = k / Cin, ci = k - tap * Cin, ky = tap / Kw, kx = tap - ky * Kw;
        int oy = row / Wo, ox = row - oy * Wo;
        int iy = oy * Stride - Padding + ky, ix = ox * Stride - Padding + kx;
        if (iy < 0 || iy >= H || ix < 0 || ix >= W) return -1;
        return (((long)batch * H + iy) * W + ix) * Cin + ci;
    }

    /// <inheritdoc />
    public readonly bool Linear => false;
}

/// <summary>
/// The block tile of <see cref="TensorCoreGemmKernels.Gemm{TCore, TTile, TA, TElem}"/>: a WarpsM x WarpsN grid of warps,
/// each owning WarpRows (32 or 64) x 32 outputs (one or two 32 x 32 warp tiles).
/// </summary>
public interface IGemmBlock
{
    /// <summary>Warps along M.</summary>
    int WarpsM { get; }
    /// <summary>Warps along N.</summary>
    int WarpsN { get; }
    /// <summary>Output rows per warp: 32 or 64.</summary>
    int WarpRows { get; }
    /// <summary>
    /// Slabs the GEMM keeps in shared memory, 2 or 3: cp.async fills slab s + Stages - 1 while slab s is multiplied, so
    /// 3 stages give a load two slabs' compute to land (the convolution keeps 2: its input goes through registers).
    /// </summary>
    int Stages { get; }
}

/// <summary>64 x 64 outputs, 4 warps of 32 x 32, 128 threads, three stages in 30 KB of shared memory: many blocks for products of a few waves.</summary>
public struct GemmBlock64 : IGemmBlock
{
    /// <inheritdoc />
    public readonly int WarpsM => 2;
    /// <inheritdoc />
    public readonly int WarpsN => 2;
    /// <inheritdoc />
    public readonly int WarpRows => 32;
    /// <inheritdoc />
    public readonly int Stages => 3;
}

/// <summary>
/// 128 x 128 outputs, 8 warps of 64 x 32, 256 threads, three stages in 60 KB of shared memory (above 48 KB: the launch
/// opts in): half the operand traffic per product of <see cref="GemmBlock64"/> (the staged slabs serve twice the outputs)
/// and 0.375 ldmatrix per mma instead of 0.5.
/// </summary>
public struct GemmBlock128 : IGemmBlock
{
    /// <inheritdoc />
    public readonly int WarpsM => 2;
    /// <inheritdoc />
    public readonly int WarpsN => 4;
    /// <inheritdoc />
    public readonly int WarpRows => 64;
    /// <inheritdoc />
    public readonly int Stages => 3;
}

/// <summary>The launch shape of a block tile.</summary>
/// <param name="BM">Output rows per block.</param>
/// <param name="BN">Weight rows per block (output columns, or half of them with GEGLU).</param>
/// <param name="Threads">Threads per block.</param>
/// <param name="SharedHalves">Dynamic shared memory in halves: the stages of the A and W slabs (of the input and weight slabs in the convolution).</param>
public readonly record struct GemmBlockShape(int BM, int BN, int Threads, int SharedHalves);

/// <summary>
/// Warp-tiled tensor-core GEMM: out[m, n] = epilogue(alpha sum_k A[m, k] W[n, k]) with f16 or bf16 inputs
/// (<see cref="IMmaElement"/>; A, W, residual and output all of that type) and fp32 accumulation, W stored
/// [N, K] as Linear weights are (the mma's column-major B).
/// </summary>
public static class TensorCoreGemmKernels
{
    /// <summary>Depth of a staged K slab.</summary>
    public const int BK = 32;

    /// <summary>Row stride of a staged slab in halves: 40 (80 bytes) keeps ldmatrix rows on distinct banks and 16-byte aligned.</summary>
    public const int Stride = BK + 8;

    /// <summary>The launch shape of block tile <typeparamref name="TTile"/>.</summary>
    public static GemmBlockShape Shape<TTile>() where TTile : struct, IGemmBlock
    {
        var tile = default(TTile);
        int bm = tile.WarpsM * tile.WarpRows, bn = 32 * tile.WarpsN, threads = 32 * tile.WarpsM * tile.WarpsN;
        // Each thread stages two 8-half chunks of each slab (StagePlan).
        if (bm * BK / 8 != 2 * threads || bn * BK / 8 != 2 * threads || tile.Stages is not (2 or 3))
            throw new NotSupportedException($"Block tile {typeof(TTile).Name}: the GEMM needs two A and two W chunks per thread and 2 or 3 stages.");
        return new GemmBlockShape(bm, bn, threads, tile.Stages * (bm + bn) * Stride);
    }

    /// <summary>
    /// Whether an [M, N] x batch product takes <see cref="GemmBlock128"/>: when its tiles alone give every one of
    /// <paramref name="multiprocessors"/> a block. Smaller products keep <see cref="GemmBlock64"/>, whose four times as
    /// many blocks fill the device.
    /// </summary>
    public static bool PrefersLargeBlock(long m, long n, long batch, int multiprocessors)
    {
        var shape = Shape<GemmBlock128>();
        return (m + shape.BM - 1) / shape.BM * ((n + shape.BN - 1) / shape.BN) * batch >= multiprocessors;
    }

    /// <summary>
    /// One block computes a BM x BN tile of <typeparamref name="TTile"/> (GEGLU: BN / 2 output columns, each from a value
    /// and a gate row of W). Warp (wm, wn) of the WarpsM x WarpsN grid owns WarpRows x 32 of it: two (or four) m16 by
    /// four n8 mma tiles, fed by ldmatrix .x4 from slabs that cp.async fills <see cref="IGemmBlock.Stages"/> - 1 slabs ahead.
    /// <para>Launch (<see cref="Shape{TTile}"/>): grid (ceil(OutColumns / (GEGLU ? BN / 2 : BN)), ceil(M / BM), batch),
    /// group Threads, SharedHalves halves of dynamic shared memory. K must be a multiple of 8; A, W and the output
    /// 16-byte aligned, the residual 4-byte aligned. The bias is float32 ([N], read only with HasBias).</para>
    /// </summary>
    public static void Gemm<TCore, TTile, TA, TElem>(TA aSource, GlobalHalf a, GlobalHalf w, ArrayView<float> bias, ArrayView<Half> residual, ArrayView<Half> output, TcGemmParams p)
        where TCore : struct, ITensorCore where TTile : struct, IGemmBlock where TA : struct, ITileSourceA where TElem : struct, IMmaElement
    {
        var core = default(TCore);
        var tile = default(TTile);
        int warpsN = tile.WarpsN, warpRows = tile.WarpRows, bm = tile.WarpsM * warpRows, bn = 32 * warpsN;
        var shared = SharedMemory.GetDynamic<ushort>();
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, wm = warp / warpsN, wn = warp - wm * warpsN;
        int batch = Grid.IdxZ, m0 = Grid.IdxY * bm;
        int outCols = p.Geglu != 0 ? bn / 2 : bn, n0 = Grid.IdxX * outCols;
        int slabs = (p.K + BK - 1) / BK;
        var plan = StagePlan.Of<TTile, TA>(aSource, batch, m0, n0, tid, p);

        // acc: the warp's rows 0-31; low: rows 32-63 (64-row warps only).
        var acc = default(WarpTile);
        var low = default(WarpTile);
        // Fragment addresses at slab depth 0 of stage 0. W: matrix 0/1 = n rows 0-7 at kk / kk + 8 (one B fragment),
        // matrix 2/3 = n rows 8-15; A: lanes 0-15 rows 0-15 at kk, lanes 16-31 the same rows at kk + 8.
        int wFrag = bm * Stride + (wn * 32 + (lane & 7) + (lane >> 4) * 8) * Stride + ((lane >> 3) & 1) * 8;
        int aFrag = (wm * warpRows + (lane & 15)) * Stride + (lane >> 4) * 8;
        int stages = tile.Stages, stageHalves = (bm + bn) * Stride, ring = stages * stageHalves;
        // Prologue: slabs 0 .. stages - 2, a commit group each (empty past the last slab, so every iteration below
        // finds the same number of groups behind its slab).
        for (int i = 0; i < stages - 1; i++)
        {
            if (i < slabs) Stage<TCore, TTile, TA>(core, shared, i * stageHalves, plan, aSource, a, w, batch, m0, i * BK, p);
            core.CpAsyncCommit();
        }
        int read = 0, write = (stages - 1) * stageHalves;
        for (int s = 0; s < slabs; s++)
        {
            // Slab s has landed once at most stages - 2 newer groups are pending. The barrier then shows every thread's
            // copies of it, and that every warp has finished slab s - 1, whose stage the next copy overwrites: one
            // barrier per slab.
            if (stages == 2) core.CpAsyncWaitAll();
            else core.CpAsyncWaitPrior();
            Group.Barrier();
            if (s + stages - 1 < slabs) Stage<TCore, TTile, TA>(core, shared, write, plan, aSource, a, w, batch, m0, (s + stages - 1) * BK, p);
            core.CpAsyncCommit();
            // The slab's two k16 steps, written out: a loop carried the accumulators through a second set of registers
            // (some 120 moves per slab in the SASS).
            KStep<TCore, TElem>(core, shared, read + aFrag, read + wFrag, warpRows, ref acc, ref low);
            KStep<TCore, TElem>(core, shared, read + aFrag + 16, read + wFrag + 16, warpRows, ref acc, ref low);
            read = read + stageHalves == ring ? 0 : read + stageHalves;
            write = write + stageHalves == ring ? 0 : write + stageHalves;
        }
        int row = m0 + wm * warpRows + (lane >> 2);
        StoreWarpTile<TCore, TElem>(core, acc, row, n0, wn, lane, bias, residual, output, batch, p);
        if (warpRows == 64) StoreWarpTile<TCore, TElem>(core, low, row + 32, n0, wn, lane, bias, residual, output, batch, p);
    }

    /// <summary>The epilogue of one 32 x 32 warp tile whose first row (of the lane's group) is <paramref name="row"/>.</summary>
    private static void StoreWarpTile<TCore, TElem>(TCore core, WarpTile acc, int row, int n0, int wn, int lane, ArrayView<float> bias, ArrayView<Half> residual,
        ArrayView<Half> output, int batch, TcGemmParams p) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        int t = lane & 3;
        int firstRow = row - (lane >> 2), firstCol = n0 + wn * 32;
        if (p.Geglu == 0 && firstRow + 32 <= p.M && firstCol + 32 <= p.N && (p.N & 1) == 0 && (p.StrideC & 1) == 0)
        {
            // A warp tile inside the output: no bounds checks, the bias read once per column, and each lane's column
            // pair (even, as N is) one 32-bit store, where the checked path costs some 20 instructions per output.
            var pairs = output.Cast<uint>();
            var residualPairs = residual.Cast<uint>();
            int c = firstCol + 2 * t;
            long at = (batch * p.StrideC + (long)row * p.N + c) >> 1, down8 = 4L * p.N, down16 = 8L * p.N;
            float b0 = Bias(bias, c, p), b1 = Bias(bias, c + 1, p), b2 = Bias(bias, c + 8, p), b3 = Bias(bias, c + 9, p);
            float b4 = Bias(bias, c + 16, p), b5 = Bias(bias, c + 17, p), b6 = Bias(bias, c + 24, p), b7 = Bias(bias, c + 25, p);
            PairTile<TCore, TElem>(core, acc.T0, b0, b1, at, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T1, b2, b3, at + 4, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T2, b4, b5, at + 8, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T3, b6, b7, at + 12, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T4, b0, b1, at + down16, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T5, b2, b3, at + down16 + 4, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T6, b4, b5, at + down16 + 8, down8, pairs, residualPairs, p);
            PairTile<TCore, TElem>(core, acc.T7, b6, b7, at + down16 + 12, down8, pairs, residualPairs, p);
            return;
        }
        if (p.Geglu != 0)
        {
            int col = n0 + wn * 16 + 2 * t;
            GegluPair<TElem>(acc.T0, acc.T1, row, col, bias, output, batch, p);
            GegluPair<TElem>(acc.T2, acc.T3, row, col + 8, bias, output, batch, p);
            GegluPair<TElem>(acc.T4, acc.T5, row + 16, col, bias, output, batch, p);
            GegluPair<TElem>(acc.T6, acc.T7, row + 16, col + 8, bias, output, batch, p);
            return;
        }
        int c0 = n0 + wn * 32 + 2 * t;
        Store<TElem>(acc.T0, row, c0, bias, residual, output, batch, p);
        Store<TElem>(acc.T1, row, c0 + 8, bias, residual, output, batch, p);
        Store<TElem>(acc.T2, row, c0 + 16, bias, residual, output, batch, p);
        Store<TElem>(acc.T3, row, c0 + 24, bias, residual, output, batch, p);
        Store<TElem>(acc.T4, row + 16, c0, bias, residual, output, batch, p);
        Store<TElem>(acc.T5, row + 16, c0 + 8, bias, residual, output, batch, p);
        Store<TElem>(acc.T6, row + 16, c0 + 16, bias, residual, output, batch, p);
        Store<TElem>(acc.T7, row + 16, c0 + 24, bias, residual, output, batch, p);
    }

    /// <summary>
    /// One k16 step of a warp: A fragments at <paramref name="aAt"/> (its rows) and B fragments at <paramref name="wAt"/>
    /// (n rows 0-15, then 16-31), shared-memory offsets of the lane's ldmatrix row.
    /// </summary>
    private static void KStep<TCore, TElem>(TCore core, ArrayView<ushort> shared, int aAt, int wAt, int warpRows, ref WarpTile acc, ref WarpTile low)
        where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var b01 = core.LdMatrixX4(shared, wAt);
        var b23 = core.LdMatrixX4(shared, wAt + 16 * Stride);
        MultiplyWarpRows<TCore, TElem>(core, shared, aAt, Stride, warpRows, b01, b23, ref acc, ref low);
    }

    /// <summary>
    /// The A side of a k16 step, shared by the GEMM and the convolution: the A fragments of the warp's 32 (or 64) rows,
    /// ldmatrix .x4 from <paramref name="aAt"/> (the lane's row; rows <paramref name="aStride"/> halves apart), times the
    /// B fragments of four n8 tiles in <paramref name="b01"/> / <paramref name="b23"/>.
    /// </summary>
    internal static void MultiplyWarpRows<TCore, TElem>(TCore core, ArrayView<ushort> shared, int aAt, int aStride, int warpRows, FragA b01, FragA b23,
        ref WarpTile acc, ref WarpTile low) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var a0 = core.LdMatrixX4(shared, aAt);
        var a1 = core.LdMatrixX4(shared, aAt + 16 * aStride);
        acc.Multiply<TCore, TElem>(core, a0, a1, b01, b23);
        if (warpRows == 64)
        {
            var a2 = core.LdMatrixX4(shared, aAt + 32 * aStride);
            var a3 = core.LdMatrixX4(shared, aAt + 48 * aStride);
            low.Multiply<TCore, TElem>(core, a2, a3, b01, b23);
        }
    }

    /// <summary>
    /// A thread's share of every slab, worked out once per block: the BM x BK A slab and the BN x BK W slab are 8-half
    /// chunks, two of each per thread (<see cref="Shape{TTile}"/> checks it), in slab rows <see cref="Row"/> and
    /// <see cref="Row"/> + threads / 4 at depth <see cref="KIn"/>. A slab then costs each chunk an add of its depth
    /// and a compare, where computing the offsets per slab took some 200 instructions per thread.
    /// </summary>
    private struct StagePlan
    {
        /// <summary>Element offsets of the W chunks (and, for a linear A, the A chunks) at slab depth 0; 0 for rows outside.</summary>
        public long A0, A1, W0, W1;
        /// <summary>1 when the chunk's row exists (output rows below M, weight rows below the output columns).</summary>
        public int AOk0, AOk1, WOk0, WOk1;
        /// <summary>Slab row of the first chunks and their depth in the slab (the second chunks are <see cref="Step{TTile}"/> rows down).</summary>
        public int Row, KIn;

        /// <summary>Rows between a thread's two chunks: threads / 4.</summary>
        public static int Step<TTile>() where TTile : struct, IGemmBlock => 8 * default(TTile).WarpsM * default(TTile).WarpsN;

        public static StagePlan Of<TTile, TA>(TA aSource, int batch, int m0, int n0, int tid, TcGemmParams p)
            where TTile : struct, IGemmBlock where TA : struct, ITileSourceA
        {
            int step = Step<TTile>(), row = tid >> 2, kIn = (tid & 3) * 8;
            var plan = new StagePlan { Row = row, KIn = kIn };
            if (aSource.Linear)
            {
                long a0 = aSource.Chunk(batch, m0 + row, 0), a1 = aSource.Chunk(batch, m0 + row + step, 0);
                plan.AOk0 = a0 >= 0 ? 1 : 0;
                plan.AOk1 = a1 >= 0 ? 1 : 0;
                plan.A0 = a0 >= 0 ? a0 + kIn : 0;
                plan.A1 = a1 >= 0 ? a1 + kIn : 0;
            }
            long wBase = batch * p.StrideW;
            int w0 = WeightRow(row, n0, p), w1 = WeightRow(row + step, n0, p);
            plan.WOk0 = OutputColumn(row, n0, p) < p.OutColumns ? 1 : 0;
            plan.WOk1 = OutputColumn(row + step, n0, p) < p.OutColumns ? 1 : 0;
            plan.W0 = plan.WOk0 != 0 ? wBase + (long)w0 * p.K + kIn : 0;
            plan.W1 = plan.WOk1 != 0 ? wBase + (long)w1 * p.K + kIn : 0;
            return plan;
        }
    }

    /// <summary>
    /// Weight row behind slab row <paramref name="r"/>: itself, or with GEGLU pairs of 8 value rows and
    /// 8 gate rows (slab rows 16j..16j+7: value rows n0 + 8j.., 16j+8..16j+15: the gate rows N/2 + n0 + 8j..).
    /// </summary>
    private static int WeightRow(int r, int n0, TcGemmParams p)
    {
        if (p.Geglu == 0) return n0 + r;
        int pair = r >> 4, within = r & 15;
        return within < 8 ? n0 + pair * 8 + within : p.N / 2 + n0 + pair * 8 + within - 8;
    }

    // The output column slab row r serves (with GEGLU its value and gate rows serve the same column).
    private static int OutputColumn(int r, int n0, TcGemmParams p) => p.Geglu != 0 ? n0 + (r >> 4) * 8 + (r & 7) : n0 + r;

    // Stages the slab at depth k0 into the stage starting at shared offset `at`: two A and two W chunks per thread.
    private static void Stage<TCore, TTile, TA>(TCore core, ArrayView<ushort> shared, int at, StagePlan plan, TA aSource, GlobalHalf a, GlobalHalf w,
        int batch, int m0, int k0, TcGemmParams p)
        where TCore : struct, ITensorCore where TTile : struct, IGemmBlock where TA : struct, ITileSourceA
    {
        var tile = default(TTile);
        int bm = tile.WarpsM * tile.WarpRows;
        int step = StagePlan.Step<TTile>(), aAt = at + plan.Row * Stride + plan.KIn, wAt = aAt + bm * Stride, next = step * Stride;
        bool depthOk = k0 + plan.KIn < p.K;
        if (aSource.Linear)
        {
            core.CpAsync16(shared, aAt, a, plan.A0 + k0, depthOk & plan.AOk0 != 0);
            core.CpAsync16(shared, aAt + next, a, plan.A1 + k0, depthOk & plan.AOk1 != 0);
        }
        else
        {
            long s0 = aSource.Chunk(batch, m0 + plan.Row, k0 + plan.KIn), s1 = aSource.Chunk(batch, m0 + plan.Row + step, k0 + plan.KIn);
            core.CpAsync16(shared, aAt, a, s0, s0 >= 0);
            core.CpAsync16(shared, aAt + next, a, s1, s1 >= 0);
        }
        core.CpAsync16(shared, wAt, w, plan.W0 + k0, depthOk & plan.WOk0 != 0);
        core.CpAsync16(shared, wAt + next, w, plan.W1 + k0, depthOk & plan.WOk1 != 0);
    }

    // The bias stays float32 as the models keep it: one read per output, added to the fp32 accumulator before the one rounding.
    private static float Bias(ArrayView<float> bias, int n, TcGemmParams p) => p.HasBias != 0 ? bias[n] : 0f;

    /// <summary>
    /// One mma tile of an interior warp tile: the lane's pairs (C0, C1) at pair index <paramref name="at"/> and (C2, C3)
    /// 8 rows down, with bias, activation and residual as <see cref="Put{TElem}"/> applies them, rounded by one cvt.rn per
    /// pair (the same round-to-nearest-even as <see cref="IMmaElement.Round"/>).
    /// </summary>
    private static void PairTile<TCore, TElem>(TCore core, MmaAcc c, float bLo, float bHi, long at, long down8, ArrayView<uint> pairs,
        ArrayView<uint> residualPairs, TcGemmParams p) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        PutPair<TCore, TElem>(core, c.C0, c.C1, bLo, bHi, at, pairs, residualPairs, p);
        PutPair<TCore, TElem>(core, c.C2, c.C3, bLo, bHi, at + down8, pairs, residualPairs, p);
    }

    private static void PutPair<TCore, TElem>(TCore core, float lo, float hi, float bLo, float bHi, long at, ArrayView<uint> pairs,
        ArrayView<uint> residualPairs, TcGemmParams p) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var e = default(TElem);
        float yLo = ScalarMath.Activate(p.Alpha * lo + bLo, p.Activation), yHi = ScalarMath.Activate(p.Alpha * hi + bHi, p.Activation);
        if (p.HasResidual != 0)
        {
            uint r = residualPairs[at];
            yLo += e.Widen((ushort)r);
            yHi += e.Widen((ushort)(r >> 16));
        }
        pairs[at] = e.Pack(core, yLo, yHi);
    }

    private static void Store<TElem>(MmaAcc c, int row, int col, ArrayView<float> bias, ArrayView<Half> residual, ArrayView<Half> output, int batch, TcGemmParams p)
        where TElem : struct, IMmaElement
    {
        Put<TElem>(c.C0, row, col, bias, residual, output, batch, p);
        Put<TElem>(c.C1, row, col + 1, bias, residual, output, batch, p);
        Put<TElem>(c.C2, row + 8, col, bias, residual, output, batch, p);
        Put<TElem>(c.C3, row + 8, col + 1, bias, residual, output, batch, p);
    }

    private static void Put<TElem>(float v, int row, int col, ArrayView<float> bias, ArrayView<Half> residual, ArrayView<Half> output, int batch, TcGemmParams p)
        where TElem : struct, IMmaElement
    {
        if (row >= p.M || col >= p.N) return;
        long at = batch * p.StrideC + (long)row * p.N + col;
        float y = ScalarMath.Activate(p.Alpha * v + Bias(bias, col, p), p.Activation);
        if (p.HasResidual != 0) y += default(TElem).Widen(Interop.FloatAsInt(residual[at]));
        output[at] = Interop.IntAsFloat(default(TElem).Round(y));
    }

    private static void GegluPair<TElem>(MmaAcc value, MmaAcc gate, int row, int col, ArrayView<float> bias, ArrayView<Half> output, int batch, TcGemmParams p)
        where TElem : struct, IMmaElement
    {
        PutGeglu<TElem>(value.C0, gate.C0, row, col, bias, output, batch, p);
        PutGeglu<TElem>(value.C1, gate.C1, row, col + 1, bias, output, batch, p);
        PutGeglu<TElem>(value.C2, gate.C2, row + 8, col, bias, output, batch, p);
        PutGeglu<TElem>(value.C3, gate.C3, row + 8, col + 1, bias, output, batch, p);
    }

    private static void PutGeglu<TElem>(float value, float gate, int row, int col, ArrayView<float> bias, ArrayView<Half> output, int batch, TcGemmParams p)
        where TElem : struct, IMmaElement
    {
        int half = p.N / 2;
        if (row >= p.M || col >= half) return;
        float h = p.Alpha * value + Bias(bias, col, p), gt = p.Alpha * gate + Bias(bias, half + col, p);
        output[batch * p.StrideC + (long)row * half + col] = Interop.IntAsFloat(default(TElem).Round(h * ScalarMath.GeluErf(gt)));
    }
}

/// <summary>A warp's 32 x 32 accumulator: T[4i + j] is m16 tile i, n8 tile j.</summary>
public struct WarpTile
{
    /// <summary>The eight mma tiles.</summary>
    public MmaAcc T0, T1, T2, T3, T4, T5, T6, T7;

    /// <summary>One k16 step: A fragments of the two m16 tiles; b01 / b23 hold the B fragments of n8 tiles 0, 1 / 2, 3 (ldmatrix .x4 order).</summary>
    public void Multiply<TCore, TElem>(TCore core, FragA a0, FragA a1, FragA b01, FragA b23) where TCore : struct, ITensorCore where TElem : struct, IMmaElement
    {
        var e = default(TElem);
        FragB b0 = new() { R0 = b01.R0, R1 = b01.R1 }, b1 = new() { R0 = b01.R2, R1 = b01.R3 };
        FragB b2 = new() { R0 = b23.R0, R1 = b23.R1 }, b3 = new() { R0 = b23.R2, R1 = b23.R3 };
        e.Mma(core, ref T0, a0, b0);
        e.Mma(core, ref T1, a0, b1);
        e.Mma(core, ref T2, a0, b2);
        e.Mma(core, ref T3, a0, b3);
        e.Mma(core, ref T4, a1, b0);
        e.Mma(core, ref T5, a1, b1);
        e.Mma(core, ref T6, a1, b2);
        e.Mma(core, ref T7, a1, b3);
    }
}
