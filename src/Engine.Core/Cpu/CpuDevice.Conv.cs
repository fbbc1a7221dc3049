using System.Buffers;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    /// <summary>
    /// Convolution as GEMM per image: output [Cout, Ho*Wo] = weight [Cout, Cin*kh*kw] x columns
    /// [Cin*kh*kw, Ho*Wo], bias fused per output channel (a row of the product). A 1x1 stride-1
    /// unpadded convolution uses the image itself as the column matrix.
    /// </summary>
    protected override unsafe void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        int batch = x.Dim(0), cin = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int cout = weight.Dim(0), kh = weight.Dim(2), kw = weight.Dim(3);
        int ho = output.Dim(2), wo = output.Dim(3), spatial = ho * wo, depth = cin * kh * kw;
        var (xArr, xOff) = Raw(x);
        var (wArr, wOff) = Raw(weight);
        var (oArr, oOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        bool pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;
        var columns = pointwise ? null : ArrayPool<float>.Shared.Rent(depth * spatial);
        try
        {
        fixed (float* px = xArr, pw = wArr, po = oArr, pbias = biasArr, pcol = columns)
        {
            for (int nIdx = 0; nIdx < batch; nIdx++)
            {
                long xBase = xOff + (long)nIdx * cin * h * w;
                float* cols = px + xBase;
                if (!pointwise)
                {
                    Im2Col(xArr, (int)xBase, columns!, cin, h, w, kh, kw, stride, padding, ho, wo);
                    cols = pcol;
                }
                var g = new GemmProblem
                {
                    M = cout, N = spatial, K = depth,
                    A = (nint)(pw + wOff), RsA = depth, CsA = 1,
                    B = (nint)cols, RsB = spatial, CsB = 1,
                    C = (nint)(po + oOff + (long)nIdx * cout * spatial), Ldc = spatial,
                    Alpha = 1f, Bias = pbias == null ? 0 : (nint)(pbias + biasOff), BiasPerRow = true,
                };
                Gemm.Run(g, Parallelism);
            }
        }
        }
        finally
        {
            if (columns is not null) ArrayPool<float>.Shared.Return(columns);
        }
    }

    /// <summary>Unfolds x [C, H, W] into columns [C*kh*kw, Ho*Wo] (zero padding), the GEMM operand of a convolution.</summary>
    private void Im2Col(float[] x, int xOff, float[] col, int cin, int h, int w, int kh, int kw, int stride, int padding, int ho, int wo)
    {
        int spatial = ho * wo;
        Parallel.For(0, cin, Parallelism, ci =>
        {
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                {
                    long rowBase = (long)((ci * kh + ky) * kw + kx) * spatial;
                    // Output columns whose input column lies inside the image: [oxLo, oxHi).
                    int oxLo = Math.Max(0, (padding - kx + stride - 1) / stride);
                    int oxHi = Math.Min(wo, (w + padding - kx + stride - 1) / stride);
                    for (int oy = 0; oy < ho; oy++)
                    {
                        int iy = oy * stride - padding + ky;
                        var dst = col.AsSpan((int)(rowBase + oy * wo), wo);
                        if (iy < 0 || iy >= h || oxLo >= oxHi) { dst.Clear(); continue; }
                        dst[..oxLo].Clear();
                        dst[oxHi..].Clear();
                        int src = xOff + (ci * h + iy) * w - padding + kx;
                        if (stride == 1) x.AsSpan(src + oxLo, oxHi - oxLo).CopyTo(dst[oxLo..oxHi]);
                        else for (int ox = oxLo; ox < oxHi; ox++) dst[ox] = x[src + ox * stride];
                    }
                }
        });
    }
}
