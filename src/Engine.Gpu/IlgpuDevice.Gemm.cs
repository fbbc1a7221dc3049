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
        var c = View(output);
        var cb = bias is null ? c : View(bias);
        bool wide = UseWideTile(m, n, batch);
        switch (b.DType)
        {
            case DType.F16: LaunchGemm(wide, new F16Weights(ViewF16(b)), View(a), cb, c, p, batch); break;
            case DType.BF16: LaunchGemm(wide, new BF16Weights(ViewBF16(b)), View(a), cb, c, p, batch); break;
            default: LaunchGemm(wide, new F32Weights(View(b)), View(a), cb, c, p, batch); break;
        }
    }

    private void LaunchGemm<TB>(bool wide, TB b, ArrayView<float> a, ArrayView<float> bias, ArrayView<float> c, GemmParams p, int batch)
        where TB : struct, IWeightView
    {
        int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
        var grid = GridOf((p.N + span - 1) / span, (p.M + span - 1) / span, batch, "MatMul");
        var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
        if (wide) _kernels.Gemm<TB, MicroTile8>()(config, a, b, bias, c, p);
        else _kernels.Gemm<TB, MicroTile>()(config, a, b, bias, c, p);
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

    /// <summary>When set, whether GEMM and convolution use 8 x 8 register blocks (tests exercise both with it).</summary>
    internal bool? ForcedWideTile { get; set; }
}
