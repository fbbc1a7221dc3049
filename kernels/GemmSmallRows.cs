using Engine.Core;
using ILGPU;
using ILGPU.Algorithms;

namespace Engine.Kernels;

/// <summary>
/// Products with a few rows (M up to <see cref="MaxRows"/>): the timestep and class embeddings, the per-block
/// modulation projections of DiT and the per-resnet time projections of a UNet, at the batch of one CFG step
/// (M = 2). The tiled GEMM gives them one row of block tiles: a few dozen blocks that each walk all of K in
/// shared-memory slabs, 18 GFLOP/s on an H200 where reading the weights once takes a microsecond. Here every
/// weight is read once per <see cref="RowsPerBlock"/> rows, straight from memory, by lanes that run along its
/// contiguous axis, four per lane in flight, and the sums of up to four rows stay in registers.
/// </summary>
public static class GemmSmallRowsKernels
{
    /// <summary>The largest M routed here.</summary>
    public const int MaxRows = 16;

    /// <summary>Rows of C one block computes (grid.y = ceil(M / RowsPerBlock)).</summary>
    public const int RowsPerBlock = 4;

    /// <summary>Threads per block where the device allows as many (the launch passes its group size; the kernel reads it).</summary>
    public const int Threads = 256;

    /// <summary>
    /// Columns of C one block computes: with B stored [N, K] (a Linear's weight) one warp per column, lanes along
    /// K and a warp-shuffle sum; with B stored [K, N] (an embedding table behind a one-hot product) a warp's worth of
    /// consecutive columns, lanes along N and the block's warps each taking every warps-th k, summed in shared memory.
    /// </summary>
    public static int ColumnsPerBlock(bool transposeB, int warpSize, int threads) => transposeB ? threads / warpSize : warpSize;

    /// <summary>The sums of up to four rows of C for one column.</summary>
    private struct RowSums
    {
        public float S0, S1, S2, S3;
    }

    /// <summary>
    /// <paramref name="s"/> plus, for the first <paramref name="rows"/> rows r, sum over k = k0, k0 + kStep, ... &lt; K of
    /// w[wAt + j wStep] a[aAt + r aRow + k aK] (j counting the ks), each row's terms added in increasing k. Four weights
    /// are loaded before their sums (one load at a time left a few warps per multiprocessor with too little memory
    /// traffic in flight); the remainder goes one at a time, in the same order.
    /// </summary>
    private static RowSums DotRows<TA, TB>(TA a, TB b, RowSums s, int k0, int kStep, int k, long wAt, long wStep, long aAt, long aRow, long aK, int rows)
        where TA : struct, IWeightView where TB : struct, IWeightView
    {
        long aStep = kStep * aK, i = aAt + k0 * aK;
        int kk = k0;
        for (; kk + 3 * kStep < k; kk += 4 * kStep, wAt += 4 * wStep, i += 4 * aStep)
        {
            float wa = b.Read(wAt), wb = b.Read(wAt + wStep), wc = b.Read(wAt + 2 * wStep), wd = b.Read(wAt + 3 * wStep);
            s.S0 = Sum4(s.S0, a, i, aStep, wa, wb, wc, wd);
            if (rows > 1) s.S1 = Sum4(s.S1, a, i + aRow, aStep, wa, wb, wc, wd);
            if (rows > 2) s.S2 = Sum4(s.S2, a, i + 2 * aRow, aStep, wa, wb, wc, wd);
            if (rows > 3) s.S3 = Sum4(s.S3, a, i + 3 * aRow, aStep, wa, wb, wc, wd);
        }
        for (; kk < k; kk += kStep, wAt += wStep, i += aStep)
        {
            float w = b.Read(wAt);
            s.S0 += w * a.Read(i);
            if (rows > 1) s.S1 += w * a.Read(i + aRow);
            if (rows > 2) s.S2 += w * a.Read(i + 2 * aRow);
            if (rows > 3) s.S3 += w * a.Read(i + 3 * aRow);
        }
        return s;
    }

    /// <summary>s + w0 a[i] + w1 a[i + step] + w2 a[i + 2 step] + w3 a[i + 3 step], added in that order.</summary>
    private static float Sum4<TA>(float s, TA a, long i, long step, float w0, float w1, float w2, float w3) where TA : struct, IWeightView
    {
        s += w0 * a.Read(i);
        s += w1 * a.Read(i + step);
        s += w2 * a.Read(i + 2 * step);
        s += w3 * a.Read(i + 3 * step);
        return s;
    }

    /// <summary>
    /// C[b] = act(alpha * op(A[b]) op(B[b or 0]) + bias), as <see cref="GemmKernels.Gemm{TA, TB, TC, TAcc}"/>, for
    /// M &lt;= <see cref="MaxRows"/>. Launch: grid (ceil(N / <see cref="ColumnsPerBlock"/>), ceil(M / RowsPerBlock),
    /// batch), group (<see cref="Threads"/> or the device's largest group, a multiple of its warp, 1, 1); static shared
    /// memory of <see cref="RowsPerBlock"/> x <see cref="Threads"/> floats for B stored [K, N].
    /// </summary>
    public static void SmallRows<TA, TB, TC>(TA a, TB b, ArrayView<float> bias, TC c, GemmParams p)
        where TA : struct, IWeightView
        where TB : struct, IWeightView
        where TC : struct, IOutputView
    {
        int row0 = Grid.IdxY * RowsPerBlock, batch = Grid.IdxZ;
        int rows = XMath.Min(RowsPerBlock, p.M - row0);
        long aBase = (long)batch * p.M * p.K, bBase = p.BroadcastB != 0 ? 0 : (long)batch * p.N * p.K;
        long aRow = p.TransposeA != 0 ? 1 : p.K, aK = p.TransposeA != 0 ? p.M : 1;
        long aAt = aBase + row0 * aRow;
        var sums = default(RowSums);
        int n;
        if (p.TransposeB != 0)
        {
            int lanes = Warp.WarpSize, lane = Warp.LaneIdx;
            n = Grid.IdxX * (Group.DimX / lanes) + Group.IdxX / lanes;
            // Lanes along K of column n's contiguous weight row.
            if (n < p.N) sums = DotRows(a, b, sums, lane, lanes, p.K, bBase + (long)n * p.K + lane, lanes, aAt, aRow, aK, rows);
            // Every lane of a warp has the same n, so the whole warp takes part in the sums or none does.
            for (int offset = lanes / 2; offset > 0; offset >>= 1)
            {
                sums.S0 += Warp.ShuffleDown(sums.S0, offset);
                sums.S1 += Warp.ShuffleDown(sums.S1, offset);
                sums.S2 += Warp.ShuffleDown(sums.S2, offset);
                sums.S3 += Warp.ShuffleDown(sums.S3, offset);
            }
            if (lane != 0 || n >= p.N) return;
        }
        else
        {
            // Lanes along N (consecutive columns, coalesced), the block's warps split K; their sums meet in shared memory.
            int lanes = Warp.WarpSize, warps = Group.DimX / lanes, warp = Group.IdxX / lanes;
            n = Grid.IdxX * lanes + Warp.LaneIdx;
            if (n < p.N) sums = DotRows(a, b, sums, warp, warps, p.K, bBase + (long)warp * p.N + n, (long)warps * p.N, aAt, aRow, aK, rows);
            var partial = SharedMemory.Allocate<float>(RowsPerBlock * Threads);
            int slot = warp * lanes + Warp.LaneIdx, stride = warps * lanes;
            partial[slot] = sums.S0;
            partial[stride + slot] = sums.S1;
            partial[2 * stride + slot] = sums.S2;
            partial[3 * stride + slot] = sums.S3;
            Group.Barrier();
            if (warp != 0 || n >= p.N) return;
            sums = default;
            for (int j = 0; j < warps; j++)
            {
                int at = j * lanes + Warp.LaneIdx;
                sums.S0 += partial[at];
                sums.S1 += partial[stride + at];
                sums.S2 += partial[2 * stride + at];
                sums.S3 += partial[3 * stride + at];
            }
        }
        float s0 = sums.S0, s1 = sums.S1, s2 = sums.S2, s3 = sums.S3;
        long cBase = (long)batch * p.M * p.N + (long)row0 * p.N + n;
        float add = p.HasBias != 0 ? bias[n] : 0f;
        c.Write(cBase, ScalarMath.Activate(p.Alpha * s0 + add, p.Activation));
        if (rows > 1) c.Write(cBase + p.N, ScalarMath.Activate(p.Alpha * s1 + add, p.Activation));
        if (rows > 2) c.Write(cBase + 2L * p.N, ScalarMath.Activate(p.Alpha * s2 + add, p.Activation));
        if (rows > 3) c.Write(cBase + 3L * p.N, ScalarMath.Activate(p.Alpha * s3 + add, p.Activation));
    }
}
