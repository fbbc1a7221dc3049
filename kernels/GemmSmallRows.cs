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

    /// <summary>
    /// s + w0 a[i] + w1 a[i + step] + w2 a[i + 2 step] + w3 a[i + 3 step], added in that order (the sequence of the
    /// one-at-a-time loop, so the unrolled and the remainder steps round alike).
    /// </summary>
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
        float s0 = 0f, s1 = 0f, s2 = 0f, s3 = 0f;
        int n;
        if (p.TransposeB != 0)
        {
            int lanes = Warp.WarpSize;
            n = Grid.IdxX * (Group.DimX / lanes) + Group.IdxX / lanes;
            if (n < p.N)
            {
                long w0 = bBase + (long)n * p.K, aStep = lanes * aK;
                int k = Warp.LaneIdx;
                // Four weights per lane in flight before their sums (one load at a time left a few warps per
                // multiprocessor with too little memory traffic in flight); each sum still takes k in increasing order.
                for (; k + 3 * lanes < p.K; k += 4 * lanes)
                {
                    long wk = w0 + k;
                    float wa = b.Read(wk), wb = b.Read(wk + lanes), wc = b.Read(wk + 2 * lanes), wd = b.Read(wk + 3 * lanes);
                    long i = aBase + row0 * aRow + k * aK;
                    s0 = Sum4(s0, a, i, aStep, wa, wb, wc, wd);
                    if (rows > 1) s1 = Sum4(s1, a, i + aRow, aStep, wa, wb, wc, wd);
                    if (rows > 2) s2 = Sum4(s2, a, i + 2 * aRow, aStep, wa, wb, wc, wd);
                    if (rows > 3) s3 = Sum4(s3, a, i + 3 * aRow, aStep, wa, wb, wc, wd);
                }
                for (; k < p.K; k += lanes)
                {
                    float w = b.Read(w0 + k);
                    long i = aBase + row0 * aRow + k * aK;
                    s0 += w * a.Read(i);
                    if (rows > 1) s1 += w * a.Read(i + aRow);
                    if (rows > 2) s2 += w * a.Read(i + 2 * aRow);
                    if (rows > 3) s3 += w * a.Read(i + 3 * aRow);
                }
            }
            // Every lane of a warp has the same n, so the whole warp takes part in the sums or none does.
            for (int offset = lanes / 2; offset > 0; offset >>= 1)
            {
                s0 += Warp.ShuffleDown(s0, offset);
                s1 += Warp.ShuffleDown(s1, offset);
                s2 += Warp.ShuffleDown(s2, offset);
                s3 += Warp.ShuffleDown(s3, offset);
            }
            if (Warp.LaneIdx != 0 || n >= p.N) return;
        }
        else
        {
            // Lanes along N (consecutive columns, coalesced), the block's warps split K; their sums meet in shared memory.
            int lanes = Warp.WarpSize, warps = Group.DimX / lanes, warp = Group.IdxX / lanes;
            n = Grid.IdxX * lanes + Warp.LaneIdx;
            if (n < p.N)
            {
                long wStep = (long)warps * p.N, aStep = warps * aK;
                int k = warp;
                for (; k + 3 * warps < p.K; k += 4 * warps)
                {
                    long wk = bBase + (long)k * p.N + n;
                    float wa = b.Read(wk), wb = b.Read(wk + wStep), wc = b.Read(wk + 2 * wStep), wd = b.Read(wk + 3 * wStep);
                    long i = aBase + row0 * aRow + k * aK;
                    s0 = Sum4(s0, a, i, aStep, wa, wb, wc, wd);
                    if (rows > 1) s1 = Sum4(s1, a, i + aRow, aStep, wa, wb, wc, wd);
                    if (rows > 2) s2 = Sum4(s2, a, i + 2 * aRow, aStep, wa, wb, wc, wd);
                    if (rows > 3) s3 = Sum4(s3, a, i + 3 * aRow, aStep, wa, wb, wc, wd);
                }
                for (; k < p.K; k += warps)
                {
                    float w = b.Read(bBase + (long)k * p.N + n);
                    long i = aBase + row0 * aRow + k * aK;
                    s0 += w * a.Read(i);
                    if (rows > 1) s1 += w * a.Read(i + aRow);
                    if (rows > 2) s2 += w * a.Read(i + 2 * aRow);
                    if (rows > 3) s3 += w * a.Read(i + 3 * aRow);
                }
            }
            var partial = SharedMemory.Allocate<float>(RowsPerBlock * Threads);
            int slot = warp * lanes + Warp.LaneIdx, stride = warps * lanes;
            partial[slot] = s0;
            partial[stride + slot] = s1;
            partial[2 * stride + slot] = s2;
            partial[3 * stride + slot] = s3;
            Group.Barrier();
            if (warp != 0 || n >= p.N) return;
            s0 = s1 = s2 = s3 = 0f;
            for (int j = 0; j < warps; j++)
            {
                int at = j * lanes + Warp.LaneIdx;
                s0 += partial[at];
                s1 += partial[stride + at];
                s2 += partial[2 * stride + at];
                s3 += partial[3 * stride + at];
            }
        }
        long cBase = (long)batch * p.M * p.N + (long)row0 * p.N + n;
        float add = p.HasBias != 0 ? bias[n] : 0f;
        c.Write(cBase, ScalarMath.Activate(p.Alpha * s0 + add, p.Activation));
        if (rows > 1) c.Write(cBase + p.N, ScalarMath.Activate(p.Alpha * s1 + add, p.Activation));
        if (rows > 2) c.Write(cBase + 2L * p.N, ScalarMath.Activate(p.Alpha * s2 + add, p.Activation));
        if (rows > 3) c.Write(cBase + 3L * p.N, ScalarMath.Activate(p.Alpha * s3 + add, p.Activation));
    }
}
