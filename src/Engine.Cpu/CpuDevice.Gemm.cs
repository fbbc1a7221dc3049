using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override unsafe void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        // Half-precision weights arrive unwidened only under bf16 compute (ReadsHalfWeights), on the
        // products that stay float32 there (Linear layers of a few rows).
        using var wide = b.DType == DType.F32 ? null : Convert(b, DType.F32);
        b = wide ?? b;
        var (aArr, aOff) = Raw(a);
        var (bArr, bOff) = Raw(b);
        var (cArr, cOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        fixed (float* pa = aArr, pb = bArr, pc = cArr, pbias = biasArr)
        {
            var g = new GemmProblem
            {
                M = m, N = n, K = k,
                A = (nint)(pa + aOff), RsA = transposeA ? 1 : k, CsA = transposeA ? m : 1,
                B = (nint)(pb + bOff), RsB = transposeB ? 1 : n, CsB = transposeB ? k : 1,
                C = (nint)(pc + cOff), Ldc = n,
                Alpha = alpha, Bias = pbias == null ? 0 : (nint)(pbias + biasOff), Activation = activation,
            };
            if (batch == 1) { Gemm.Run(g, Parallelism); return; }
            if (broadcastB && !transposeA)
            {
                // A shared B and row-major A: the batches stack into one taller product (packs B once).
                g.M = batch * m;
                Gemm.Run(g, Parallelism);
                return;
            }
            long aStride = (long)m * k, bStride = broadcastB ? 0 : (long)k * n, cStride = (long)m * n;
            if ((long)m * n * k < (1 << 20))
            {
                // Many small products (e.g. per-head attention matrices): one thread per product.
                var shared = g;
                Parallel.For(0, batch, Parallelism, bi => Gemm.Run(Offset(shared, bi, aStride, bStride, cStride), null));
                return;
            }
            for (int bi = 0; bi < batch; bi++) Gemm.Run(Offset(g, bi, aStride, bStride, cStride), Parallelism);
        }
    }

    private static unsafe GemmProblem Offset(GemmProblem g, int batchIndex, long aStride, long bStride, long cStride)
    {
        g.A += (nint)(batchIndex * aStride * sizeof(float));
        g.B += (nint)(batchIndex * bStride * sizeof(float));
        g.C += (nint)(batchIndex * cStride * sizeof(float));
        return g;
    }
}
