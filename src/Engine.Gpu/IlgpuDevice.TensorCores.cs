using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

/// <summary>
/// The one routing point to the tensor-core kernels: on CUDA, attention and Linear-shaped products whose
/// operands are all F16 or all BF16 tensors (a Linear's bias float32) run on <see cref="TensorCoreAttentionKernels"/>
/// and <see cref="TensorCoreGemmKernels"/> in that element type (fp32 accumulation); everything else keeps the
/// fp32-accumulating general kernels. The op files call <see cref="TryTensorCoreAttention"/> / <see cref="TryTensorCoreMatMul"/> first.
/// </summary>
public sealed partial class IlgpuDevice
{
    // cp.async and ldmatrix move 16-byte chunks: every tensor must start on an 8-element boundary, and all share one 16-bit type.
    private static bool SameHalfAligned(params ReadOnlySpan<Tensor> tensors)
    {
        if (!SameHalf(tensors)) return false;
        foreach (var t in tensors)
            if (t.Offset % 8 != 0) return false;
        return true;
    }

    /// <summary>Attention on the tensor-core kernel when q, k, v and the output are all F16 or all BF16 (on CUDA, or emulated), the head width is a multiple of 8 up to 160 and the scale is positive.</summary>
    private bool TryTensorCoreAttention(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        if (!TensorCoresFor(EmulateTensorCoreAttention) || !SameHalfAligned(q, k, v, output)) return false;
        // The kernel takes its row maxima on unscaled scores, which needs a positive scale (the models' 1 / sqrt(d)).
        if (d % 8 != 0 || d > OutputTile.MaxHeadDim || lk == 0 || !(scale > 0f && float.IsFinite(scale))) return false;
        // Each head width the models use has its own compiled kernel (TensorCoreAttentionKernels.ForHeadDim).
        var kernel = TensorCoreAttentionKernels.ForHeadDim(d, new AttentionLoader(_kernels, q.DType == DType.F16));
        var p = new TcAttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, ScaleLog2 = scale * 1.4426950408889634f };
        var grid = GridOf((lq + TensorCoreAttentionKernels.Rows - 1) / TensorCoreAttentionKernels.Rows, (long)batch * heads, 1, "Attention");
        var config = new KernelConfig(grid, new Index3D(TensorCoreAttentionKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreAttentionKernels.SharedHalves(d)));
        kernel(config, GlobalHalf.Of(HalfBits(q)), GlobalHalf.Of(HalfBits(k)), GlobalHalf.Of(HalfBits(v)), HalfBits(output), p);
        TensorCoreAttentionLaunches++;
        return true;
    }

    /// <summary>The flash attention of one element type for a head-width type, loaded once: PTX on CUDA, the emulated instructions elsewhere.</summary>
    private readonly struct AttentionLoader(KernelCache kernels, bool f16)
        : IHeadDimVisitor<Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>>
    {
        public Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams> Visit<TDim>() where TDim : struct, IHeadDim =>
            f16 ? Load<F16Element, TDim>() : Load<BF16Element, TDim>();

        private Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams> Load<TElem, TDim>()
            where TElem : struct, IMmaElement where TDim : struct, IHeadDim => kernels.Product("tc-attention", typeof((TElem, TDim)), acc =>
        {
            if (acc.AcceleratorType != AcceleratorType.Cuda)
                return acc.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(TensorCoreAttentionKernels.FlashAttention<EmulatedTensorCore, TElem, TDim>);
            var kernel = PromotedKernels.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(acc, TensorCoreAttentionKernels.FlashAttention<PtxTensorCore, TElem, TDim>,
                LaunchBounds.ForAttention(default(TDim)));
            CudaLaunchLimits.AllowSharedBytes(kernel, TensorCoreAttentionKernels.SharedHalves(OutputTile.MaxHeadDim) * 2);
            return kernel;
        });
    }

    /// <summary>
    /// A Linear-shaped product (a [.., M, K] x b [N, K]^T; a, b and the output all F16 or all BF16; K a multiple of 8;
    /// the bias float32 as the models keep it) on the tensor-core GEMM with the bias and activation fused; otherwise
    /// false. A half bias is read through its float32 copy, made once per bias tensor (<see cref="ParameterCopies"/>).
    /// </summary>
    private bool TryTensorCoreMatMul(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        if (!TensorCoresFor(EmulateTensorCoreGemm) || !SameHalfAligned(a, b, output)) return false;
        if (transposeA || !transposeB || k % 8 != 0) return false;
        if (bias is not null) bias = _parameterCopies.For(this, bias, DType.F32);
        var p = new TcGemmParams
        {
            M = m, N = n, K = k, StrideA = (long)m * k, StrideW = broadcastB ? 0 : (long)n * k, StrideC = (long)m * n,
            HasBias = bias is null ? 0 : 1, Activation = activation, Alpha = alpha,
        };
        bool large = UseLargeGemmBlock(m, n, batch);
        var (kernel, shape) = (large, a.DType) switch
        {
            (true, DType.F16) => TensorCoreGemm<GemmBlock128, F16Element>(),
            (true, _) => TensorCoreGemm<GemmBlock128, BF16Element>(),
            (false, DType.F16) => TensorCoreGemm<GemmBlock64, F16Element>(),
            _ => TensorCoreGemm<GemmBlock64, BF16Element>(),
        };
        var grid = GridOf((n + shape.BN - 1) / shape.BN, (m + shape.BM - 1) / shape.BM, batch, "MatMul");
        var config = new KernelConfig(grid, new Index3D(shape.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves));
        var o = HalfBits(output);
        kernel(config, new DenseA { M = m, K = k, Stride = p.StrideA }, GlobalHalf.Of(HalfBits(a)), GlobalHalf.Of(HalfBits(b)), BiasView(bias), o, o, p);
        TensorCoreGemmLaunches++;
        if (large) TensorCoreGemmLargeLaunches++;
        return true;
    }

    /// <summary>
    /// Whether an [M, N] x batch product takes the 128 x 128 block tile (<see cref="TensorCoreGemmKernels.PrefersLargeBlock"/>:
    /// half the operand traffic per output; the 64 x 64 tile at 4096^3 moved about 4 TB/s of slabs at 133 TFLOP/s on the
    /// H200), where the device holds 256-thread groups. <see cref="ForcedLargeGemmBlock"/> overrides it.
    /// </summary>
    private bool UseLargeGemmBlock(long m, long n, long batch)
    {
        if (_accelerator.MaxNumThreadsPerGroup < TensorCoreGemmKernels.Shape<GemmBlock128>().Threads) return false;
        if (ForcedLargeGemmBlock is bool forced) return forced;
        return TensorCoreGemmKernels.PrefersLargeBlock(m, n, batch, _accelerator.NumMultiprocessors);
    }

    private (Action<KernelConfig, DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams> Kernel, GemmBlockShape Shape)
        TensorCoreGemm<TTile, TElem>() where TTile : struct, IGemmBlock where TElem : struct, IMmaElement =>
        (_kernels.Product("tc-gemm", typeof((TTile, TElem)), acc =>
        {
            if (acc.AcceleratorType != AcceleratorType.Cuda)
                return acc.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(TensorCoreGemmKernels.Gemm<EmulatedTensorCore, TTile, DenseA, TElem>);
            var kernel = PromotedKernels.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(acc, TensorCoreGemmKernels.Gemm<PtxTensorCore, TTile, DenseA, TElem>);
            CudaLaunchLimits.AllowSharedBytes(kernel, TensorCoreGemmKernels.Shape<TTile>().SharedHalves * 2); // three stages of the large tile: 60 KB
            return kernel;
        }), TensorCoreGemmKernels.Shape<TTile>());

    /// <summary>When set, whether tensor-core products take the 128 x 128 block tile (tests exercise both with it; the device must hold 256-thread groups).</summary>
    internal bool? ForcedLargeGemmBlock { get; set; }

    /// <summary>Products run on the 128 x 128 block tile so far (tests check the choice with it).</summary>
    internal long TensorCoreGemmLargeLaunches { get; private set; }

    /// <inheritdoc />
    /// <remarks>
    /// With F16 or BF16 activations on the tensor-core route, a bound weight stored in another type (float32, or
    /// the other half type) is read through its copy in the activations' type, made once per weight tensor as
    /// the convolution's are, so the product runs on the tensor cores. Slices (a chunk of the output features)
    /// are views made per call and keep the general kernel, which reads any storage.
    /// </remarks>
    protected override void LinearCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, Activation activation)
    {
        if (TensorCoresFor(EmulateTensorCoreGemm) && x.DType is DType.F16 or DType.BF16 && output.DType == x.DType
            && weight.DType != x.DType && weight.OwnsBuffer && x.Dim(1) % 8 == 0)
            weight = _parameterCopies.For(this, weight, x.DType);
        base.LinearCore(x, weight, bias, output, activation);
    }

    /// <summary>
    /// When set on an ILGPU CPU accelerator whose groups hold 128 threads, Linear-shaped F16 / BF16 products take
    /// the tensor-core GEMM with its instructions emulated (<see cref="EmulatedTensorCore"/>), so tests run the
    /// routed kernel, bias and epilogue included, without a GPU. Set before the first product.
    /// </summary>
    internal bool EmulateTensorCoreGemm { get; set; }

    /// <summary>As <see cref="EmulateTensorCoreGemm"/>, for attention on the tensor-core flash-attention kernel.</summary>
    internal bool EmulateTensorCoreAttention { get; set; }

    /// <summary>Products run on the tensor-core GEMM so far (tests check the routing with it).</summary>
    internal long TensorCoreGemmLaunches { get; private set; }

    /// <summary>Attention calls run on the tensor-core kernel so far (tests check the routing with it).</summary>
    internal long TensorCoreAttentionLaunches { get; private set; }

    // CUDA, or the CPU accelerator with the emulation switched on and 128-thread groups.
    private bool TensorCoresFor(bool emulate) => MmaCapable
        || (emulate && _accelerator.AcceleratorType == AcceleratorType.CPU && _accelerator.MaxNumThreadsPerGroup >= TensorCoreGemmKernels.Shape<GemmBlock64>().Threads);

    /// <summary>
    /// Whether this is a CUDA device of compute capability 8.0 or later: the tensor-core kernels' mma.m16n8k16 (f16 and
    /// bf16) and cp.async need SM 8.0, so on a Volta or Turing GPU (V100, T4) half activations keep the general kernels,
    /// which read and write half storage too, instead of failing to load PTX the device cannot run.
    /// </summary>
    internal bool MmaCapable => _accelerator is ILGPU.Runtime.Cuda.CudaAccelerator cuda && cuda.Architecture >= ILGPU.Runtime.Cuda.CudaArchitecture.SM_80;
}
