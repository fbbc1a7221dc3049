using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override unsafe void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        // Half-precision weights (ReadsHalfWeights) stay as they are: the packers widen them panel by panel.
        var (aArr, aOff) = Raw(a);
        var (cArr, cOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        fixed (float* pa = aArr, pc = cArr, pbias = biasArr)
        {
            var g = new GemmProblem
            {
                M = m, N = n, K = k,
                A = (nint)(pa + aOff), RsA = transposeA ? 1 : k, CsA = transposeA ? m : 1,
                B = ElementAddress(b), TypeB = b.DType, RsB = transposeB ? 1 : n, CsB = transposeB ? k : 1,
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

    /// <summary>
    /// Address of a tensor's first element in its own type (float32, F16 or BF16). The device's buffers are
    /// native memory that never moves, so the address stays valid while the tensor is alive.
    /// </summary>
    internal static unsafe nint ElementAddress(Tensor t)
    {
        var buffer = (CpuBuffer)t.Buffer;
        return t.DType switch
        {
            DType.F32 => (nint)(buffer.F32!.Pointer + t.Offset),
            DType.F16 => (nint)(buffer.F16!.Pointer + t.Offset),
            _ => (nint)(buffer.BF16!.Pointer + t.Offset),
        };
    }

    private static unsafe GemmProblem Offset(GemmProblem g, int batchIndex, long aStride, long bStride, long cStride)
    {
        g.A += (nint)(batchIndex * aStride * sizeof(float));
        g.B += (nint)(batchIndex * bStride * Gemm.ElementSize(g.TypeB));
        g.C += (nint)(batchIndex * cStride * sizeof(float));
        return g;
    }
}
