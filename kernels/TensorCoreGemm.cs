using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="TensorCoreGemmKernels.Gemm{TCore, TA, TElem}"/>.</summary>
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
}

/// <summary>
/// Warp-tiled tensor-core GEMM: out[m, n] = epilogue(alpha sum_k A[m, k] W[n, k]) with f16 or bf16 inputs
/// (<see cref="IMmaElement"/>; A, W, residual and output all of that type) and fp32 accumulation, W stored
/// [N, K] as Linear weights are (the mma's column-major B).
/// </summary>
public static class TensorCoreGemmKernels
{
    /// <summary>Block tile: 64 x 64 outputs (32 x 64 with GEGLU), 32-deep K slabs, 4 warps of 32 x 32.</summary>
    public const int BM = 64, BN = 64, BK = 32, Threads = 128;

    /// <summary>Row stride of a staged slab in halves: 40 (80 bytes) keeps ldmatrix rows on distinct banks and 16-byte aligned.</summary>
    public const int Stride = BK + 8;

    /// <summary>Dynamic shared memory in halves: two stages of the A and W slabs.</summary>
    public const int SharedHalves = 2 * (BM + BN) * Stride;

    /// <summary>
    /// One block computes a 64 x 64 tile (GEGLU: 32 output columns, each from a value and a gate row of W).
    /// Warp (wm, wn) of the 2 x 2 grid owns 32 x 32 of it: two m16 by four n8 mma tiles, fed by
    /// ldmatrix .x4 from slabs that cp.async fills one stage ahead (double buffering).
    /// <para>Launch: grid (ceil(OutColumns / (GEGLU ? 32 : 64)), ceil(M / 64), batch), group 128,
    /// <see cref="SharedHalves"/> halves (20 KB) of dynamic shared memory. K must be a multiple of 8;
    /// A, W and the output 16-byte aligned. The bias is float32 ([N], read only with HasBias).</para>
    /// </summary>
    public static void Gemm<TCore, TA, TElem>(TA aSource, GlobalHalf a, GlobalHalf w, ArrayView<float> bias, ArrayView<Half> residual, ArrayView<Half> output, TcGemmParams p)
        where TCore : struct, ITensorCore where TA : struct, ITileSourceA where TElem : struct, IMmaElement
    {
        var core = default(TCore);
        var shared = SharedMemory.GetDynamic<ushort>();
        int tid = Group.IdxX, lane = tid & 31, warp = tid >> 5, wm = warp >> 1, wn = warp & 1;
        int batch = Grid.IdxZ, m0 = Grid.IdxY * BM;
        int outCols = p.Geglu != 0 ? BN / 2 : BN, n0 = Grid.IdxX * outCols;
        long wBase = batch * p.StrideW;
        int slabs = (p.K + BK - 1) / BK;

        var acc = default(WarpTile);
        Stage<TCore, TA>(core, shared, 0, aSource, a, w, wBase, batch, m0, n0, 0, tid, p);
        core.CpAsyncCommit();
        for (int s = 0; s < slabs; s++)
        {
            if (s + 1 < slabs)
            {
                Stage<TCore, TA>(core, shared, (s + 1) & 1, aSource, a, w, wBase, batch, m0, n0, (s + 1) * BK, tid, p);
                core.CpAsyncCommit();
                core.CpAsyncWaitPrior();
            }
            else core.CpAsyncWaitAll();
            Group.Barrier();
            int aOff = (s & 1) * (BM + BN) * Stride, wOff = aOff + BM * Stride;
            for (int kk = 0; kk < BK; kk += 16)
            {
                // A: lanes 0-15 rows 0-15 at kk, lanes 16-31 the same rows at kk + 8 (R0..R3 = the A fragment).
                int aRow = wm * 32 + (lane & 15), aCol = kk + (lane >> 4) * 8;
                var a0 = core.LdMatrixX4(shared, aOff + aRow * Stride + aCol);
                var a1 = core.LdMatrixX4(shared, aOff + (aRow + 16) * Stride + aCol);
                // W: matrix 0/1 = n rows 0-7 at kk / kk + 8 (one B fragment), matrix 2/3 = n rows 8-15.
                int wRow = wn * 32 + (lane & 7) + (lane >> 4) * 8, wCol = kk + ((lane >> 3) & 1) * 8;
                var b01 = core.LdMatrixX4(shared, wOff + wRow * Stride + wCol);
                var b23 = core.LdMatrixX4(shared, wOff + (wRow + 16) * Stride + wCol);
                acc.Multiply<TCore, TElem>(core, a0, a1, b01, b23);
            }
            Group.Barrier();
        }
        int g = lane >> 2, t = lane & 3;
        int row = m0 + wm * 32 + g;
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
    /// Weight row behind slab row <paramref name="r"/>: itself, or with GEGLU pairs of 8 value rows and
    /// 8 gate rows (slab rows 16j..16j+7: value rows n0 + 8j.., 16j+8..16j+15: the gate rows N/2 + n0 + 8j..).
    /// </summary>
    private static int WeightRow(int r, int n0, TcGemmParams p)
    {
        if (p.Geglu == 0) return n0 + r;
        int pair = r >> 4, within = r & 15;
        return within < 8 ? n0 + pair * 8 + within : p.N / 2 + n0 + pair * 8 + within - 8;
    }

    // 128 threads stage 256 A chunks and 256 W chunks of 8 halves: two of each per thread.
    private static void Stage<TCore, TA>(TCore core, ArrayView<ushort> shared, int stage, TA aSource, GlobalHalf a, GlobalHalf w, long wBase,
        int batch, int m0, int n0, int k0, int tid, TcGemmParams p)
        where TCore : struct, ITensorCore where TA : struct, ITileSourceA
    {
        int aOff = stage * (BM + BN) * Stride, wOff = aOff + BM * Stride;
        for (int c = tid; c < BM * BK / 8; c += Threads)
        {
            int r = c >> 2, k = (c & 3) * 8;
            long src = aSource.Chunk(batch, m0 + r, k0 + k);
            core.CpAsync16(shared, aOff + r * Stride + k, a, src < 0 ? 0 : src, src >= 0);
        }
        int outLimit = p.Geglu != 0 ? p.N / 2 : p.N;
        for (int c = tid; c < BN * BK / 8; c += Threads)
        {
            int r = c >> 2, k = (c & 3) * 8, wr = WeightRow(r, n0, p);
            int local = p.Geglu != 0 ? n0 + (r >> 4) * 8 + (r & 7) : wr;
            bool valid = local < outLimit && k0 + k < p.K;
            core.CpAsync16(shared, wOff + r * Stride + k, w, valid ? wBase + (long)wr * p.K + k0 + k : 0, valid);
        }
    }

    // The bias stays float32 as the models keep it: one read per output, added to the fp32 accumulator before the one rounding.
    private static float Bias(ArrayView<float> bias, int n, TcGemmParams p) => p.HasBias != 0 ? bias[n] : 0f;

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
