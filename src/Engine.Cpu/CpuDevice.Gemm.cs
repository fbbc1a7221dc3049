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

    // Weights (2D x in) up to which the GEGLU is fused: measured at SD 1.5's 320 -> 2560 (819K) the fused pass took
    // 0.93-0.95x the CPU time of the pair; at 640 -> 5120 (3.3M, a 13 MB packed block streamed past each 1.3 MB row
    // block) it took 1.00-1.03x, so the pair stays there.
    private const long FusedGegluWeights = 1 << 20;

    /// <summary>
    /// GEGLU fused into the projection: the GEMM hands each block of MC rows of [h | g] over from a thread's scratch
    /// (<see cref="Gemm.RunRowBlocks"/>), where h * gelu_erf(g) reads it from L2 (<see cref="Pointwise.MapGated{TOp}"/>),
    /// so the doubled projection (84 MB at SD 1.5's 64x64 level) is never written to memory, page-faulted or read back.
    /// Same arithmetic as the Linear then the Geglu. Falls back to that pair under bf16 compute, for half activations,
    /// below one panel of rows, and for weights over <see cref="FusedGegluWeights"/> elements.
    /// </summary>
    protected override unsafe void LinearGegluCore(Tensor x, Tensor weight, Tensor? bias, Tensor output)
    {
        int rows = x.Dim(0), k = x.Dim(1), n = weight.Dim(0), d = n / 2;
        var g = new GemmProblem { M = rows, N = n, K = k, Alpha = 1f, TypeB = weight.DType, RsB = 1, CsB = k, RsA = k, CsA = 1 };
        bool fused = x.DType == DType.F32 && output.DType == DType.F32 && (bias is null || bias.DType == DType.F32)
            && (Compute != ComputePrecision.Bf16 || rows < Bf16MinRows || Bf16.UnavailableReason is not null)
            && rows >= Gemm.PanelRows && (long)n * k <= FusedGegluWeights && Gemm.RowBlocksFit(g);
        if (!fused) { base.LinearGegluCore(x, weight, bias, output); return; }
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        fixed (float* px = xArr, pbias = biasArr)
        {
            g.A = (nint)(px + xOff);
            g.B = ElementAddress(weight);
            g.Bias = pbias == null ? 0 : (nint)(pbias + biasOff);
            nint po = (nint)(oArr.Pointer + oOff);
            Gemm.RunRowBlocks(g, Parallelism, (row0, count, c, ldc) =>
            {
                for (int r = 0; r < count; r++)
                    Pointwise.MapGated<GeluErfOperator>(c + (long)r * ldc, c + (long)r * ldc + d, (float*)po + (long)(row0 + r) * d, d);
            });
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
