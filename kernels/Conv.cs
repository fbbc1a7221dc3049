using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="ConvKernels.Conv2d"/>.</summary>
public struct ConvParams
{
    /// <summary>Input channels, height, width.</summary>
    public int Cin, H, W;
    /// <summary>Output channels and kernel height, width.</summary>
    public int Cout, Kh, Kw;
    /// <summary>Output height and width.</summary>
    public int Ho, Wo;
    /// <summary>Stride and zero padding (both spatial dimensions).</summary>
    public int Stride, Padding;
    /// <summary>1 when the bias view holds Cout values to add.</summary>
    public int HasBias;
    /// <summary>Edge T of the square thread tile.</summary>
    public int Tile;
}

/// <summary>Convolutions.</summary>
public static class ConvKernels
{
    /// <summary>
    /// 2-D cross-correlation as an implicit GEMM, with no im2col buffer: per image n,
    /// out[n] [Cout, Ho*Wo] = W [Cout, Cin*kh*kw] x cols [Cin*kh*kw, Ho*Wo] + bias, where the cols
    /// element (k, p) is gathered on the fly from x (k = (ci, ky, kx), p = (oy, ox); zero outside).
    /// <para>Launch: grid (ceil(Ho*Wo/T), ceil(Cout/T), N), group (T, T, 1); dynamic shared memory
    /// 2*T*T floats (weight tile and gathered input tile), two barriers per T-deep slab of K.</para>
    /// </summary>
    public static void Conv2d(ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> output, ConvParams p)
    {
        int t = p.Tile;
        int tx = Group.IdxX, ty = Group.IdxY;
        int col = Grid.IdxX * t + tx, row = Grid.IdxY * t + ty, n = Grid.IdxZ;
        int spatial = p.Ho * p.Wo, window = p.Kh * p.Kw, depth = p.Cin * window;
        var shared = SharedMemory.GetDynamic<float>();
        var wTile = shared.SubView(0, t * t);
        var xTile = shared.SubView(t * t, t * t);
        long xBase = (long)n * p.Cin * p.H * p.W;
        int oy = col / p.Wo, ox = col - (col / p.Wo) * p.Wo;
        float acc = 0f;
        for (int k0 = 0; k0 < depth; k0 += t)
        {
            int ka = k0 + tx;
            wTile[ty * t + tx] = row < p.Cout && ka < depth ? w[(long)row * depth + ka] : 0f;
            int kb = k0 + ty;
            float xv = 0f;
            if (kb < depth && col < spatial)
            {
                int ci = kb / window, r = kb - ci * window, ky = r / p.Kw, kx = r - ky * p.Kw;
                int iy = oy * p.Stride - p.Padding + ky, ix = ox * p.Stride - p.Padding + kx;
                if (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W) xv = x[xBase + ((long)ci * p.H + iy) * p.W + ix];
            }
            xTile[ty * t + tx] = xv;
            Group.Barrier();
            for (int kk = 0; kk < t; kk++) acc += wTile[ty * t + kk] * xTile[kk * t + tx];
            Group.Barrier();
        }
        if (row < p.Cout && col < spatial)
        {
            if (p.HasBias != 0) acc += bias[row];
            output[((long)n * p.Cout + row) * spatial + col] = acc;
        }
    }
}
