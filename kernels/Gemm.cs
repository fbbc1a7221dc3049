using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="GemmKernels.Gemm"/>.</summary>
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
    /// <summary>Epilogue activation number (Engine.Core.Activation order).</summary>
    public int Activation;
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
    /// <para>Launch: grid (ceil(N/T), ceil(M/T), batch), group (T, T, 1); dynamic shared memory
    /// 2*T*T floats (an A tile [T rows x T k] and a B tile [T k x T cols]). T comes from the
    /// accelerator (largest power of two with T*T &lt;= max group size, at most 16). Each thread owns
    /// one element of C; the K loop stages T-wide slabs of A and B through shared memory with two
    /// barriers per slab. Edges are zero-padded, so any M, N, K works.</para>
    /// </summary>
    public static void Gemm(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, ArrayView<float> c, GemmParams p)
    {
        int t = p.Tile;
        int tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * t + tx, row = Grid.IdxY * t + ty, batch = Grid.IdxZ;
        var shared = SharedMemory.GetDynamic<float>();
        var aTile = shared.SubView(0, t * t);
        var bTile = shared.SubView(t * t, t * t);
        long aBase = (long)batch * p.M * p.K;
        long bBase = p.BroadcastB != 0 ? 0L : (long)batch * p.K * p.N;
        float acc = 0f;
        for (int k0 = 0; k0 < p.K; k0 += t)
        {
            int ka = k0 + tx;
            float av = 0f;
            if (row < p.M && ka < p.K)
                av = p.TransposeA != 0 ? a[aBase + (long)ka * p.M + row] : a[aBase + (long)row * p.K + ka];
            aTile[ty * t + tx] = av;
            int kb = k0 + ty;
            float bv = 0f;
            if (kb < p.K && col < p.N)
                bv = p.TransposeB != 0 ? b[bBase + (long)col * p.K + kb] : b[bBase + (long)kb * p.N + col];
            bTile[ty * t + tx] = bv;
            Group.Barrier();
            for (int kk = 0; kk < t; kk++) acc += aTile[ty * t + kk] * bTile[kk * t + tx];
            Group.Barrier();
        }
        if (row < p.M && col < p.N)
        {
            float v = acc * p.Alpha;
            if (p.HasBias != 0) v += bias[col];
            c[(long)batch * p.M * p.N + (long)row * p.N + col] = KernelMath.Activate(v, p.Activation);
        }
    }
}
