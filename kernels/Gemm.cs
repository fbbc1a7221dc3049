using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="GemmKernels.Gemm{TA, TB, TC, TAcc}"/>.</summary>
public struct GemmParams
{
    /// <summary>Rows of op(A) and C.</summary>
    public int M;
    /// <summary>Columns of op(B) and C.</summary>
    public int N;
    /// <summary>Inner dimension.</summary>
    public int K;
    /// <summary>1 when A is stored [K, M].</summary>
    public int TransposeA;
    /// <summary>1 when B is stored [N, K].</summary>
    public int TransposeB;
    /// <summary>1 when every batch shares one B.</summary>
    public int BroadcastB;
    /// <summary>1 when the bias view holds N values to add.</summary>
    public int HasBias;
    /// <summary>Epilogue activation.</summary>
    public Activation Activation;
    /// <summary>Scale applied to the product before the bias.</summary>
    public float Alpha;
    /// <summary>Edge T of the square thread tile (group is T x T).</summary>
    public int Tile;
}

/// <summary>Dense matrix products.</summary>
public static class GemmKernels
{
    /// <summary>
    /// C[b] = act(alpha * op(A[b]) op(B[b or 0]) + bias), row-major, float32.
    /// <para>Launch: grid (ceil(N/ST), ceil(M/ST), batch) with S the micro-tile size, group (T, T, 1);
    /// dynamic shared memory <see cref="TileLayout.SharedFloats"/>(S, T) floats: an A slab [T k, ST rows]
    /// and a B slab [T k, ST cols], both k-major with row stride ST + 1. T comes from the accelerator
    /// (largest power of two &lt;= 16 with T*T &lt;= max group size; 16 on CUDA, giving 64 x 64 block
    /// tiles with <see cref="MicroTile"/> and 128 x 128 with <see cref="MicroTile8"/>, 8 / 16 KB of
    /// shared memory). Each thread accumulates its S x S block in registers; the K loop stages T-deep
    /// slabs with two barriers each.
    /// Loads are zero-padded at the edges, so any M, N, K works; the epilogue applies alpha, bias
    /// and the activation before the single store.</para>
    /// </summary>
    /// <typeparam name="TA">Storage of A (the activations: float32, float16 or bfloat16), widened as it is staged.</typeparam>
    /// <typeparam name="TB">Storage of B (<see cref="F32Weights"/>, <see cref="F16Weights"/> or <see cref="BF16Weights"/>), widened to float32 as it is staged.</typeparam>
    /// <typeparam name="TC">Storage of C, rounded once from the float32 result.</typeparam>
    /// <typeparam name="TAcc">The per-thread register block (<see cref="MicroTile"/> or <see cref="MicroTile8"/>).</typeparam>
    public static void Gemm<TA, TB, TC, TAcc>(TA a, TB b, ArrayView<float> bias, TC c, GemmParams p)
        where TA : struct, IWeightView
        where TB : struct, IWeightView
        where TC : struct, IOutputView
        where TAcc : struct, IMicroTile
    {
        var acc = default(TAcc);
        int size = acc.Size, t = p.Tile, span = size * t, threads = t * t;
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * t + tx;
        int row0 = Grid.IdxY * span, col0 = Grid.IdxX * span, batch = Grid.IdxZ;
        var shared = SharedMemory.GetDynamic<float>();
        int stride = TileLayout.SlabStride(size, t);
        var aTile = shared.SubView(0, t * stride);
        var bTile = shared.SubView(t * stride, t * stride);
        long aBase = (long)batch * p.M * p.K;
        long bBase = p.BroadcastB != 0 ? 0L : (long)batch * p.K * p.N;
        for (int k0 = 0; k0 < p.K; k0 += t)
        {
            for (int e = tid; e < t * span; e += threads)
            {
                // A: consecutive threads walk k for row-major A, rows for transposed A (coalesced either way).
                int kk, r;
                if (p.TransposeA != 0) { kk = e / span; r = e - kk * span; }
                else { r = e / t; kk = e - r * t; }
                int row = row0 + r, k = k0 + kk;
                float av = 0f;
                if (row < p.M && k < p.K)
                    av = a.Read(p.TransposeA != 0 ? aBase + (long)k * p.M + row : aBase + (long)row * p.K + k);
                aTile[kk * stride + r] = av;

                int kb, cc;
                if (p.TransposeB != 0) { cc = e / t; kb = e - cc * t; }
                else { kb = e / span; cc = e - kb * span; }
                int col = col0 + cc, kq = k0 + kb;
                float bv = 0f;
                if (col < p.N && kq < p.K)
                    bv = b.Read(p.TransposeB != 0 ? bBase + (long)col * p.K + kq : bBase + (long)kq * p.N + col);
                bTile[kb * stride + cc] = bv;
            }
            Group.Barrier();
            acc.Accumulate(aTile, stride, bTile, stride, t, t, tx, ty);
            Group.Barrier();
        }
        long cBase = (long)batch * p.M * p.N;
        for (int i = 0; i < size; i++)
        {
            int row = row0 + ty + i * t;
            if (row >= p.M) break;
            for (int j = 0; j < size; j++)
            {
                int col = col0 + tx + j * t;
                if (col >= p.N) break;
                float v = acc.Get(i, j) * p.Alpha;
                if (p.HasBias != 0) v += bias[col];
                c.Write(cBase + (long)row * p.N + col, ScalarMath.Activate(v, p.Activation));
            }
        }
    }
}
