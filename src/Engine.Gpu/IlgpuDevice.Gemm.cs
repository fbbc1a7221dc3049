using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override bool ReadsHalfWeights => true;

    /// <inheritdoc />
    protected override void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        if (output.Length == 0) return;
        if (TryTensorCoreMatMul(a, b, output, batch, m, n, k, transposeA, transposeB, broadcastB, bias, activation, alpha)) return;
        var p = new GemmParams
        {
            M = m, N = n, K = k, TransposeA = transposeA ? 1 : 0, TransposeB = transposeB ? 1 : 0,
            BroadcastB = broadcastB ? 1 : 0, HasBias = bias is null ? 0 : 1, Activation = activation, Alpha = alpha, Tile = _gemmTile,
        };
        if (bias is not null && bias.DType != DType.F32)
        {
            using var s = Stage();
            MatMulCore(a, b, output, batch, m, n, k, transposeA, transposeB, broadcastB, s.In(bias), activation, alpha);
            return;
        }
        bool fewRows = m <= GemmSmallRowsKernels.MaxRows && FewRowsGemm;
        var launch = new GemmLaunch(this, UseWideTile(m, n, batch), fewRows, BiasView(bias), p, batch);
        switch (a.DType)
        {
            case DType.F16: launch.WithA(new F16Weights(ViewF16(a)), b, output); break;
            case DType.BF16: launch.WithA(new BF16Weights(ViewBF16(a)), b, output); break;
            default: launch.WithA(new F32Weights(View(a)), b, output); break;
        }
    }

    private ILGPU.Runtime.MemoryBuffer1D<float, Stride1D.Dense>? _absentBias;

    /// <summary>
    /// The bias argument of the GEMM and convolution kernels: the bias itself, or, when there is none, a
    /// one-float buffer kept by the device (the kernels read the bias only when <c>HasBias</c> is set, and a
    /// half-precision output cannot stand in for a float32 view).
    /// </summary>
    private ArrayView<float> BiasView(Tensor? bias) =>
        bias is not null ? View(bias) : (_absentBias ??= _accelerator.Allocate1D<float>(1)).View;

    /// <summary>Picks the GEMM instantiation for the storages of A, B and C, one dtype at a time.</summary>
    private readonly struct GemmLaunch(IlgpuDevice device, bool wide, bool fewRows, ArrayView<float> bias, GemmParams p, int batch)
    {
        public void WithA<TA>(TA a, Tensor b, Tensor c) where TA : struct, IWeightView
        {
            switch (b.DType)
            {
                case DType.F16: WithB(a, new F16Weights(ViewF16(b)), c); break;
                case DType.BF16: WithB(a, new BF16Weights(ViewBF16(b)), c); break;
                default: WithB(a, new F32Weights(View(b)), c); break;
            }
        }

        private void WithB<TA, TB>(TA a, TB b, Tensor c) where TA : struct, IWeightView where TB : struct, IWeightView
        {
            switch (c.DType)
            {
                case DType.F16: Run(a, b, new F16Output(ViewF16(c))); break;
                case DType.BF16: Run(a, b, new BF16Output(ViewBF16(c))); break;
                default: Run(a, b, new F32Output(View(c))); break;
            }
        }

        private void Run<TA, TB, TC>(TA a, TB b, TC c) where TA : struct, IWeightView where TB : struct, IWeightView where TC : struct, IOutputView
        {
            if (fewRows)
            {
                int threads = Math.Min(GemmSmallRowsKernels.Threads, device._accelerator.MaxNumThreadsPerGroup);
                int columns = GemmSmallRowsKernels.ColumnsPerBlock(p.TransposeB != 0, device._accelerator.WarpSize, threads);
                var rowsGrid = device.GridOf((p.N + columns - 1) / columns, (p.M + GemmSmallRowsKernels.RowsPerBlock - 1) / GemmSmallRowsKernels.RowsPerBlock, batch, "MatMul");
                device._kernels.GemmSmallRows<TA, TB, TC>()(new KernelConfig(rowsGrid, new Index3D(threads, 1, 1)), a, b, bias, c, p);
                return;
            }
            int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
            var grid = device.GridOf((p.N + span - 1) / span, (p.M + span - 1) / span, batch, "MatMul");
            var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
            if (wide) device._kernels.Gemm<TA, TB, TC, MicroTile8>()(config, a, b, bias, c, p);
            else device._kernels.Gemm<TA, TB, TC, MicroTile>()(config, a, b, bias, c, p);
        }
    }

    /// <summary>
    /// Whether an [M, N] x batch product runs with 8 x 8 register blocks (8T x 8T block tiles): when
    /// those tiles alone give every multiprocessor a block, and the shared slabs fit. Smaller products
    /// keep 4 x 4 blocks, whose four times as many blocks keep the device busy.
    /// <see cref="ForcedWideTile"/> overrides it (tests).
    /// </summary>
    private bool UseWideTile(long m, long n, long batch)
    {
        if (TileLayout.SharedFloats(MicroTile8.Size, _gemmTile) * sizeof(float) > _sharedBytes) return false;
        if (ForcedWideTile is bool forced) return forced;
        long span = (long)MicroTile8.Size * _gemmTile;
        long blocks = (m + span - 1) / span * ((n + span - 1) / span) * batch;
        return blocks >= _accelerator.NumMultiprocessors;
    }

    /// <summary>
    /// Whether products of at most <see cref="GemmSmallRowsKernels.MaxRows"/> rows that the tensor cores do not take run on
    /// <see cref="GemmSmallRowsKernels"/> (default) rather than the tiled GEMM (tests compare the two).
    /// </summary>
    internal bool FewRowsGemm { get; set; } = true;

    /// <summary>When set, whether GEMM and convolution use 8 x 8 register blocks (tests exercise both with it).</summary>
    internal bool? ForcedWideTile { get; set; }
}
