using System.Numerics.Tensors;
using Engine.Kernels;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        var (aArr, aOff) = Raw(a);
        var (bArr, bOff) = Raw(b);
        var (cArr, cOff) = Raw(output);
        float[]? biasArr = bias is null ? null : Span(bias).ToArray();
        // Bring both operands to row-major A [M, K] and B [K, N] so one kernel serves all cases.
        float[]? packedB = null;
        for (int bi = 0; bi < batch; bi++)
        {
            int aBase = aOff + bi * m * k, cBase = cOff + bi * m * n;
            float[] aRows = aArr; int aStart = aBase;
            if (transposeA) { aRows = TransposeCopy(aArr, aBase, k, m); aStart = 0; }
            float[] bRows; int bStart;
            if (transposeB)
            {
                if (packedB is null || !broadcastB) packedB = TransposeCopy(bArr, bOff + (broadcastB ? 0 : bi * k * n), n, k);
                bRows = packedB; bStart = 0;
            }
            else { bRows = bArr; bStart = bOff + (broadcastB ? 0 : bi * k * n); }
            Gemm(aRows, aStart, bRows, bStart, cArr, cBase, m, n, k, Parallelism);
            Epilogue(cArr, cBase, m, n, biasArr, activation, alpha);
        }
    }

    private static float[] TransposeCopy(float[] src, int offset, int rows, int cols)
    {
        var dst = new float[rows * cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                dst[c * rows + r] = src[offset + r * cols + c];
        return dst;
    }

    /// <summary>C[M, N] = A[M, K] B[K, N], all row-major and dense; rows of C are split across threads.</summary>
    internal static void Gemm(float[] a, int aOff, float[] b, int bOff, float[] c, int cOff, int m, int n, int k, ParallelOptions options)
    {
        Parallel.For(0, m, options, i =>
        {
            var row = c.AsSpan(cOff + i * n, n);
            row.Clear();
            for (int p = 0; p < k; p++)
            {
                float aik = a[aOff + i * k + p];
                if (aik != 0f) TensorPrimitives.MultiplyAdd(b.AsSpan(bOff + p * n, n), aik, row, row);
            }
        });
    }

    private static void Epilogue(float[] c, int cOff, int m, int n, float[]? bias, Activation activation, float alpha)
    {
        if (bias is null && activation == Activation.None && alpha == 1f) return;
        for (int i = 0; i < m; i++)
        {
            var row = c.AsSpan(cOff + i * n, n);
            if (alpha != 1f) TensorPrimitives.Multiply(row, alpha, row);
            if (bias is not null) TensorPrimitives.Add(row, bias, row);
            if (activation != Activation.None)
                for (int j = 0; j < n; j++) row[j] = KernelMath.Activate(row[j], (int)activation);
        }
    }

    /// <inheritdoc />
    protected override void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        int batch = x.Dim(0), cin = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int cout = weight.Dim(0), kh = weight.Dim(2), kw = weight.Dim(3);
        int ho = output.Dim(2), wo = output.Dim(3), spatial = ho * wo, depth = cin * kh * kw;
        var (xArr, xOff) = Raw(x);
        var (wArr, wOff) = Raw(weight);
        var (oArr, oOff) = Raw(output);
        float[]? biasArr = bias is null ? null : Span(bias).ToArray();
        bool pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;
        var columns = pointwise ? null : new float[depth * spatial];
        for (int nIdx = 0; nIdx < batch; nIdx++)
        {
            int xBase = xOff + nIdx * cin * h * w;
            float[] colArr = xArr; int colOff = xBase;
            if (!pointwise)
            {
                Im2Col(xArr, xBase, columns!, cin, h, w, kh, kw, stride, padding, ho, wo);
                colArr = columns!; colOff = 0;
            }
            int oBase = oOff + nIdx * cout * spatial;
            Gemm(wArr, wOff, colArr, colOff, oArr, oBase, cout, spatial, depth, Parallelism);
            if (biasArr is not null)
                for (int o = 0; o < cout; o++) TensorPrimitives.Add(oArr.AsSpan(oBase + o * spatial, spatial), biasArr[o], oArr.AsSpan(oBase + o * spatial, spatial));
        }
    }

    /// <summary>Unfolds x [C, H, W] into columns [C*kh*kw, Ho*Wo] (zero padding), the GEMM operand of a convolution.</summary>
    internal static void Im2Col(float[] x, int xOff, float[] col, int cin, int h, int w, int kh, int kw, int stride, int padding, int ho, int wo)
    {
        int spatial = ho * wo;
        Parallel.For(0, cin, ci =>
        {
            for (int ky = 0; ky < kh; ky++)
                for (int kx = 0; kx < kw; kx++)
                {
                    int rowBase = ((ci * kh + ky) * kw + kx) * spatial;
                    for (int oy = 0; oy < ho; oy++)
                    {
                        int iy = oy * stride - padding + ky;
                        int dst = rowBase + oy * wo;
                        if (iy < 0 || iy >= h) { Array.Clear(col, dst, wo); continue; }
                        int src = xOff + (ci * h + iy) * w;
                        for (int ox = 0; ox < wo; ox++)
                        {
                            int ix = ox * stride - padding + kx;
                            col[dst + ox] = ix >= 0 && ix < w ? x[src + ix] : 0f;
                        }
                    }
                }
        });
    }
}
