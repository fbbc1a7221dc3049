using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

/// <summary>
/// The convolution route to the tensor cores (beside <c>IlgpuDevice.TensorCores.cs</c>, which routes attention
/// and Linear products): F16 or BF16 activations on CUDA run on <see cref="TensorCoreConvKernels"/>, reading and
/// writing NCHW as every other op does, with fp32 accumulation and the bias in the epilogue.
/// </summary>
public sealed partial class IlgpuDevice
{
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams, long>? _tcConvReduceF16, _tcConvReduceBF16;
    private ILGPU.Runtime.MemoryBuffer1D<float, Stride1D.Dense>? _tcConvPartials;

    /// <summary>When set, the number of K splits every tensor-core convolution uses (tests); otherwise chosen per shape.</summary>
    internal int? ForcedConvSplits { get; set; }

    /// <summary>
    /// K splits for a convolution of <paramref name="tiles"/> output tiles (all images) and <paramref name="slabs"/> K slabs:
    /// enough blocks for four per multiprocessor, each split at least 8 slabs deep, at most 16 splits; 1 when the tiles
    /// alone fill the device. Returns the splits and the slabs per split, every split non-empty.
    /// </summary>
    private (int Splits, int SplitSlabs) ConvSplits(long tiles, int slabs)
    {
        long target = 4L * _accelerator.NumMultiprocessors;
        int splits = ForcedConvSplits ?? (tiles >= target ? 1 : (int)Math.Min(Math.Min((target + tiles - 1) / tiles, slabs / 8), 16));
        splits = Math.Clamp(splits, 1, slabs);
        int per = (slabs + splits - 1) / splits;
        return ((slabs + per - 1) / per, per);
    }

    /// <summary>
    /// On ILGPU's CPU accelerator, run the tensor-core routes with <see cref="EmulatedTensorCore"/> (tests: the
    /// same routing and kernel code as CUDA). Needs groups of 128 threads (<see cref="CreateSimulated"/> with 4+ warps).
    /// </summary>
    internal bool EmulateTensorCoreConv { get; set; }

    /// <summary>Convolutions launched on the tensor-core kernel so far (tests check the routing with it).</summary>
    internal int TensorCoreConvLaunches { get; private set; }

    /// <summary>
    /// A convolution on the tensor-core kernel when it fits; otherwise false and the caller keeps the fp32-accumulating
    /// tiled kernel. Eligible: x and output both F16 or both BF16; 3x3 with padding 1 and stride 1 or 2, or 1x1 with
    /// stride 1 and no padding (the shapes the models use and the tests cover); Cin a multiple of 8, so every 8-element
    /// weight chunk (K = 9 Cin or Cin) is one aligned cp.async. Cout and the spatial sizes are free (tile edges are
    /// masked). With Cin a multiple of 32 (every UNet and VAE convolution past conv_in) K runs tap-major
    /// (<see cref="TcConvParams.TapMajor"/>). Everything else stays on today's path: float32 activations, mixed storages, Cin of 3 or 4 (conv_in),
    /// other kernel sizes, strides or paddings. Device.Conv2d has no groups or dilation, so neither reaches here.
    /// </summary>
    private bool TryTensorCoreConv(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        bool cores = MmaCapable || (EmulateTensorCoreConv && _accelerator.AcceleratorType == AcceleratorType.CPU);
        if (!cores || _accelerator.MaxNumThreadsPerGroup < TensorCoreConvKernels.Shape<GemmBlock64>().Threads) return false;
        if (x.DType is not (DType.F16 or DType.BF16) || output.DType != x.DType) return false;
        int cin = x.Dim(1), kh = weight.Dim(2), kw = weight.Dim(3);
        bool k3 = kh == 3 && kw == 3 && padding == 1 && stride is 1 or 2;
        bool k1 = kh == 1 && kw == 1 && padding == 0 && stride == 1;
        if (!(k3 || k1) || cin % 8 != 0) return false;
        // Channels in whole slabs: K tap-major (a 3x3 weight reordered once; a 1x1 weight is already), gathered by tap
        // with 32-bit offsets within an image, so one image must hold fewer than 2^31 elements.
        bool tapMajor = cin % TensorCoreConvKernels.BK == 0 && (long)cin * x.Dim(2) * x.Dim(3) <= int.MaxValue;
        var w = _parameterCopies.For(this, weight, x.DType, tapMajor && k3);
        if (w.Offset % 8 != 0) return false;
        var p = new TcConvParams
        {
            Cin = cin, H = x.Dim(2), W = x.Dim(3), Cout = weight.Dim(0), Ho = output.Dim(2), Wo = output.Dim(3),
            Kh = kh, Kw = kw, Stride = stride, Padding = padding, HasBias = bias is null ? 0 : 1, TapMajor = tapMajor ? 1 : 0,
        };
        p.Dense = k1 && p.Pixels % 8 == 0 && x.Offset % 8 == 0 ? 1 : 0;
        var biasView = BiasView(bias is null ? null : _parameterCopies.For(this, bias, DType.F32));
        int images = x.Dim(0);
        bool large = UseLargeConvBlock(p.Pixels, p.Cout, images);
        var (kernel, shape) = (large, x.DType) switch
        {
            (true, DType.F16) => TensorCoreConv<GemmBlock128, F16Element>(),
            (true, _) => TensorCoreConv<GemmBlock128, BF16Element>(),
            (false, DType.F16) => TensorCoreConv<GemmBlock64, F16Element>(),
            _ => TensorCoreConv<GemmBlock64, BF16Element>(),
        };
        int tilesX = (p.Pixels + shape.BN - 1) / shape.BN, tilesY = (p.Cout + shape.BM - 1) / shape.BM;
        (p.Splits, p.SplitSlabs) = ConvSplits((long)tilesX * tilesY * images, (p.K + TensorCoreConvKernels.BK - 1) / TensorCoreConvKernels.BK);
        long count = (long)images * p.Cout * p.Pixels;
        var partials = BiasView(null); // unread without a split: the kernel stores the output itself
        if (p.Splits > 1)
        {
            long need = p.Splits * count;
            if (_tcConvPartials is null || _tcConvPartials.Length < need)
            {
                _tcConvPartials?.Dispose();
                _tcConvPartials = _accelerator.Allocate1D<float>(need);
            }
            partials = _tcConvPartials.View.SubView(0, need);
        }
        var grid = GridOf(tilesX, tilesY, (long)images * p.Splits, "Conv2d");
        var config = new KernelConfig(grid, new Index3D(shape.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves));
        kernel(config, GlobalHalf.Of(HalfBits(x)), GlobalHalf.Of(HalfBits(w)), biasView, partials, HalfBits(output), p);
        if (p.Splits > 1)
        {
            var reduce = x.DType == DType.F16
                ? _tcConvReduceF16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams, long>(TensorCoreConvKernels.ReduceSplits<F16Element>)
                : _tcConvReduceBF16 ??= _accelerator.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams, long>(TensorCoreConvKernels.ReduceSplits<BF16Element>);
            reduce((int)count, partials, biasView, HalfBits(output), p, count);
        }
        TensorCoreConvLaunches++;
        if (large) TensorCoreConvLargeLaunches++;
        return true;
    }

    /// <summary>
    /// Whether a convolution takes the 128 x 128 block tile (<see cref="TensorCoreConvKernels.PrefersLargeBlock"/>: its tiles
    /// alone fill the device, so no K split is needed either), where the device holds 256-thread groups;
    /// <see cref="ForcedLargeConvBlock"/> overrides it.
    /// </summary>
    private bool UseLargeConvBlock(int pixels, int cout, int images)
    {
        if (_accelerator.MaxNumThreadsPerGroup < TensorCoreConvKernels.Shape<GemmBlock128>().Threads) return false;
        if (ForcedLargeConvBlock is bool forced) return forced;
        return TensorCoreConvKernels.PrefersLargeBlock(pixels, cout, images, _accelerator.NumMultiprocessors);
    }

    /// <summary>When set, whether tensor-core convolutions take the 128 x 128 block tile (tests exercise both with it).</summary>
    internal bool? ForcedLargeConvBlock { get; set; }

    /// <summary>Convolutions run on the 128 x 128 block tile so far (tests check the choice with it).</summary>
    internal int TensorCoreConvLargeLaunches { get; private set; }

    private (Action<KernelConfig, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams> Kernel, GemmBlockShape Shape)
        TensorCoreConv<TTile, TElem>() where TTile : struct, IGemmBlock where TElem : struct, IMmaElement =>
        (_kernels.Product("tc-conv", typeof((TTile, TElem)), acc => acc.AcceleratorType == AcceleratorType.Cuda
            ? PromotedKernels.LoadStreamKernel<GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams>(acc, TensorCoreConvKernels.Conv2d<PtxTensorCore, TTile, TElem>)
            : acc.LoadStreamKernel<GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams>(TensorCoreConvKernels.Conv2d<EmulatedTensorCore, TTile, TElem>)),
            TensorCoreConvKernels.Shape<TTile>());

    /// <summary>The 16-bit storage of an F16 or BF16 tensor (bf16 bits seen as <see cref="Half"/>; the kernels move bits).</summary>
    private static ArrayView<Half> HalfBits(Tensor t) => t.DType == DType.F16 ? ViewF16(t) : ViewBF16(t).Cast<Half>();
}
