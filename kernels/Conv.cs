using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="ConvKernels.Conv2d{TX, TW, TO, TAcc}"/>.</summary>
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
    /// <para>Launch: grid (ceil(Ho*Wo/ST), ceil(Cout/ST), N) with S the micro-tile size, group (T, T, 1);
    /// dynamic shared memory <see cref="TileLayout.SharedFloats"/>(S, T) floats (weight slab and gathered
    /// input slab, k-major with row stride ST + 1); each thread accumulates an S x S block; two barriers
    /// per T-deep slab of K. T and S as for the GEMM.</para>
    /// </summary>
    /// <typeparam name="TX">Storage of the input activations, widened as they are gathered.</typeparam>
    /// <typeparam name="TW">Storage of the weights (<see cref="F32Weights"/>, <see cref="F16Weights"/> or <see cref="BF16Weights"/>), widened to float32 as they are staged.</typeparam>
    /// <typeparam name="TO">Storage of the output, rounded once from the float32 result.</typeparam>
    /// <typeparam name="TAcc">The per-thread register block (<see cref="MicroTile"/> or <see cref="MicroTile8"/>).</typeparam>
    public static void Conv2d<TX, TW, TO, TAcc>(TX x, TW w, ArrayView<float> bias, TO output, ConvParams p)
        where TX : struct, IWeightView
        where TW : struct, IWeightView
        where TO : struct, IOutputView
        where TAcc : struct, IMicroTile
    {
        var acc = default(TAcc);
        int size = acc.Size, t = p.Tile, span = size * t, threads = t * t;
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * t + tx;
        int row0 = Grid.IdxY * span, col0 = Grid.IdxX * span, n = Grid.IdxZ;
        int spatial = p.Ho * p.Wo, window = p.Kh * p.Kw, depth = p.Cin * window;
        var shared = SharedMemory.GetDynamic<float>();
        int stride = TileLayout.SlabStride(size, t);
        var wTile = shared.SubView(0, t * stride);
        var xTile = shared.SubView(t * stride, t * stride);
        long xBase = (long)n * p.Cin * p.H * p.W;
        for (int k0 = 0; k0 < depth; k0 += t)
        {
            for (int e = tid; e < t * span; e += threads)
            {
                int r = e / t, kk = e - r * t;
                int row = row0 + r, k = k0 + kk;
                wTile[kk * stride + r] = row < p.Cout && k < depth ? w.Read((long)row * depth + k) : 0f;

                int kb = e / span, cc = e - kb * span;
                int col = col0 + cc, kq = k0 + kb;
                float xv = 0f;
                if (kq < depth && col < spatial)
                {
                    int ci = kq / window, rem = kq - ci * window, ky = rem / p.Kw, kx = rem - ky * p.Kw;
                    int oy = col / p.Wo, ox = col - oy * p.Wo;
                    int iy = oy * p.Stride - p.Padding + ky, ix = ox * p.Stride - p.Padding + kx;
                    if (iy >= 0 && iy < p.H && ix >= 0 && ix < p.W) xv = x.Read(xBase + ((long)ci * p.H + iy) * p.W + ix);
                }
                xTile[kb * stride + cc] = xv;
            }
            Group.Barrier();
            acc.Accumulate(wTile, stride, xTile, stride, t, t, tx, ty);
            Group.Barrier();
        }
        for (int i = 0; i < size; i++)
        {
            int row = row0 + ty + i * t;
            if (row >= p.Cout) break;
            float b = p.HasBias != 0 ? bias[row] : 0f;
            for (int j = 0; j < size; j++)
            {
                int col = col0 + tx + j * t;
                if (col >= spatial) break;
                output.Write(((long)n * p.Cout + row) * spatial + col, acc.Get(i, j) + b);
            }
        }
    }
}
