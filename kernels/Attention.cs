using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="AttentionKernels.FlashAttention"/>.</summary>
public struct AttentionParams
{
    /// <summary>Query and key lengths.</summary>
    public int Lq, Lk;
    /// <summary>Number of heads and head width d.</summary>
    public int Heads, HeadDim;
    /// <summary>Row width H * d of q, k, v and output.</summary>
    public int Width;
    /// <summary>Score scale (usually 1 / sqrt(d)).</summary>
    public float Scale;
    /// <summary>Rows per Q tile and per K/V tile (Br = Bc = Tile) of <see cref="AttentionKernels.FlashAttention"/>; the register-tiled kernel has fixed tiles and ignores it.</summary>
    public int Tile;
}

/// <summary>Fused multi-head attention.</summary>
public static class AttentionKernels
{
    /// <summary>Row stride of the K tile in shared memory: d rounded up to an odd number.</summary>
    public static int KeyStride(int d) => d | 1;

    /// <summary>Row stride of the score tile: Tile + 1, so the softmax pass (one lane per row) is free of bank conflicts.</summary>
    public static int ScoreStride(int tile) => tile + 1;

    /// <summary>Dynamic shared memory of <see cref="FlashAttention"/> in floats for a tile and head width.</summary>
    public static int SharedFloats(int tile, int d) => 3 * tile * d + tile * KeyStride(d) + tile * ScoreStride(tile) + 3 * tile;

    /// <summary>
    /// Flash-style attention, out = softmax(q k^T * scale) v per (batch, head), never storing the
    /// Lq x Lk scores: a group owns Tile query rows of one (batch, head), keeps them in shared memory,
    /// and walks the keys in Tile-row blocks with an online softmax (running max m, running sum l,
    /// accumulator O rescaled by exp(m_old - m_new)).
    /// <para>Launch: grid (ceil(Lq/Tile), B*Heads), group G threads (power of two, G &gt;= Tile).
    /// Dynamic shared memory <see cref="SharedFloats"/> floats: Q, V, O tiles [Tile, d], the K tile
    /// with an odd row stride (consecutive threads read consecutive key rows in the score loop; an
    /// even stride such as 64 would put all 32 lanes of a warp on one shared-memory bank), scores
    /// [Tile, Tile + 1] (odd stride for the same reason), m, l and the per-row correction. The host picks the largest Tile in
    /// {64, 32, 16, 8} that fits the group and min(48 KB, the accelerator's shared memory); d = 160
    /// gets Tile 16 (42 KB). Four barriers per key block. Rows past Lq / keys past Lk are masked.</para>
    /// </summary>
    public static void FlashAttention(ArrayView<float> q, ArrayView<float> k, ArrayView<float> v, ArrayView<float> output, AttentionParams p)
    {
        int tile = p.Tile, d = p.HeadDim, t = Group.IdxX, g = Group.DimX;
        int q0 = Grid.IdxX * tile, bh = Grid.IdxY, b = bh / p.Heads, h = bh - b * p.Heads;
        var shared = SharedMemory.GetDynamic<float>();
        int td = tile * d, dk = KeyStride(d), tk = tile * dk, ss = ScoreStride(tile), ts = tile * ss;
        var qs = shared.SubView(0, td);
        var ks = shared.SubView(td, tk);
        var vs = shared.SubView(td + tk, td);
        var os = shared.SubView(2 * td + tk, td);
        var s = shared.SubView(3 * td + tk, ts);
        var mRow = shared.SubView(3 * td + tk + ts, tile);
        var lRow = shared.SubView(3 * td + tk + ts + tile, tile);
        var corr = shared.SubView(3 * td + tk + ts + 2 * tile, tile);
        long qBase = (long)b * p.Lq * p.Width + (long)h * d;
        long kBase = (long)b * p.Lk * p.Width + (long)h * d;
        int qCount = p.Lq - q0 < tile ? p.Lq - q0 : tile;

        for (int i = t; i < td; i += g)
        {
            int r = i / d, c = i - r * d;
            qs[i] = r < qCount ? q[qBase + (long)(q0 + r) * p.Width + c] : 0f;
            os[i] = 0f;
        }
        for (int r = t; r < tile; r += g) { mRow[r] = -float.MaxValue; lRow[r] = 0f; }
        Group.Barrier();

        for (int k0 = 0; k0 < p.Lk; k0 += tile)
        {
            int kvCount = p.Lk - k0 < tile ? p.Lk - k0 : tile;
            for (int i = t; i < td; i += g)
            {
                int r = i / d, c = i - r * d;
                bool inside = r < kvCount;
                long src = kBase + (long)(k0 + r) * p.Width + c;
                ks[r * dk + c] = inside ? k[src] : 0f;
                vs[i] = inside ? v[src] : 0f;
            }
            Group.Barrier();

            for (int i = t; i < tile * tile; i += g)
            {
                int r = i / tile, j = i - r * tile;
                float dot = 0f;
                if (j < kvCount)
                    for (int c = 0; c < d; c++) dot += qs[r * d + c] * ks[j * dk + c];
                s[r * ss + j] = dot * p.Scale;
            }
            Group.Barrier();

            for (int r = t; r < tile; r += g)
            {
                float mOld = mRow[r], mNew = mOld;
                for (int j = 0; j < kvCount; j++) mNew = MathF.Max(mNew, s[r * ss + j]);
                float sum = 0f;
                for (int j = 0; j < tile; j++)
                {
                    float e = j < kvCount ? MathF.Exp(s[r * ss + j] - mNew) : 0f;
                    s[r * ss + j] = e;
                    sum += e;
                }
                float scaleOld = MathF.Exp(mOld - mNew);
                corr[r] = scaleOld;
                lRow[r] = lRow[r] * scaleOld + sum;
                mRow[r] = mNew;
            }
            Group.Barrier();

            for (int i = t; i < td; i += g)
            {
                int r = i / d, c = i - r * d;
                float acc = os[i] * corr[r];
                for (int j = 0; j < kvCount; j++) acc += s[r * ss + j] * vs[j * d + c];
                os[i] = acc;
            }
            Group.Barrier();
        }

        for (int i = t; i < qCount * d; i += g)
        {
            int r = i / d, c = i - r * d;
            output[qBase + (long)(q0 + r) * p.Width + c] = os[i] / lRow[r];
        }
    }
}
