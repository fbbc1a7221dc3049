using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

/// <summary>
/// The one routing point to the tensor-core kernels: on CUDA, attention and Linear-shaped products whose
/// operands are all F16 tensors (a Linear's bias float32) run on <see cref="TensorCoreAttentionKernels"/> and
/// <see cref="TensorCoreGemmKernels"/> (fp32 accumulation); everything else keeps the fp32 kernels.
/// The op files call <see cref="TryTensorCoreAttention"/> / <see cref="TryTensorCoreMatMul"/> first.
/// </summary>
public sealed partial class IlgpuDevice
{
    private Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>? _tcAttention;
    private Action<KernelConfig, DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>? _tcGemm;

    // cp.async and ldmatrix move 16-byte chunks: the tensor must start on an 8-half boundary.
    private bool OnTensorCores(Tensor t) => _accelerator.AcceleratorType == AcceleratorType.Cuda && t.DType == DType.F16 && t.Offset % 8 == 0;

    /// <summary>Attention on the tensor-core kernel when q, k, v and the output are F16 on CUDA and the head width is a multiple of 8 up to 160.</summary>
    private bool TryTensorCoreAttention(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        if (!OnTensorCores(q) || !OnTensorCores(k) || !OnTensorCores(v) || !OnTensorCores(output)) return false;
        if (d % 8 != 0 || d > OutputTile.MaxHeadDim || lk == 0) return false;
        if (_tcAttention is null)
        {
            var kernel = _accelerator.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(TensorCoreAttentionKernels.FlashAttention<PtxTensorCore>);
            CudaLaunchLimits.AllowSharedBytes(kernel, TensorCoreAttentionKernels.SharedHalves(OutputTile.MaxHeadDim) * 2);
            _tcAttention = kernel;
        }
        var p = new TcAttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, ScaleLog2 = scale * 1.4426950408889634f };
        var grid = GridOf((lq + TensorCoreAttentionKernels.Rows - 1) / TensorCoreAttentionKernels.Rows, (long)batch * heads, 1, "Attention");
        var config = new KernelConfig(grid, new Index3D(TensorCoreAttentionKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreAttentionKernels.SharedHalves(d)));
        _tcAttention(config, GlobalHalf.Of(ViewF16(q)), GlobalHalf.Of(ViewF16(k)), GlobalHalf.Of(ViewF16(v)), ViewF16(output), p);
        return true;
    }

    /// <summary>
    /// A Linear-shaped product (a [.., M, K] x b [N, K]^T, F16 operands and output, K a multiple of 8, the bias
    /// float32 as the models keep it) on the tensor-core GEMM with the bias and activation fused; otherwise false.
    /// A half bias is read through its float32 copy, made once per bias tensor (<see cref="ParameterCopies"/>).
    /// </summary>
    private bool TryTensorCoreMatMul(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        if (!GemmOnTensorCores(a) || !GemmOnTensorCores(b) || !GemmOnTensorCores(output)) return false;
        if (transposeA || !transposeB || k % 8 != 0) return false;
        if (bias is not null) bias = _parameterCopies.For(this, bias, DType.F32);
        _tcGemm ??= EmulatesTensorCoreGemm
            ? _accelerator.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(TensorCoreGemmKernels.Gemm<EmulatedTensorCore, DenseA>)
            : _accelerator.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(TensorCoreGemmKernels.Gemm<PtxTensorCore, DenseA>);
        var p = new TcGemmParams
        {
            M = m, N = n, K = k, StrideA = (long)m * k, StrideW = broadcastB ? 0 : (long)n * k, StrideC = (long)m * n,
            HasBias = bias is null ? 0 : 1, Activation = activation, Alpha = alpha,
        };
        var grid = GridOf((n + TensorCoreGemmKernels.BN - 1) / TensorCoreGemmKernels.BN, (m + TensorCoreGemmKernels.BM - 1) / TensorCoreGemmKernels.BM, batch, "MatMul");
        var config = new KernelConfig(grid, new Index3D(TensorCoreGemmKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreGemmKernels.SharedHalves));
        var o = ViewF16(output);
        _tcGemm(config, new DenseA { M = m, K = k, Stride = p.StrideA }, GlobalHalf.Of(ViewF16(a)), GlobalHalf.Of(ViewF16(b)), BiasView(bias), o, o, p);
        TensorCoreGemmLaunches++;
        return true;
    }

    /// <summary>
    /// When set on an ILGPU CPU accelerator whose groups hold 128 threads, Linear-shaped F16 products take the
    /// tensor-core GEMM with its instructions emulated (<see cref="EmulatedTensorCore"/>), so tests run the
    /// routed kernel, bias and epilogue included, without a GPU. Set before the first product.
    /// </summary>
    internal bool EmulateTensorCoreGemm { get; set; }

    /// <summary>Products run on the tensor-core GEMM so far (tests check the routing with it).</summary>
    internal long TensorCoreGemmLaunches { get; private set; }

    private bool EmulatesTensorCoreGemm => EmulateTensorCoreGemm && _accelerator.AcceleratorType == AcceleratorType.CPU
        && _accelerator.MaxNumThreadsPerGroup >= TensorCoreGemmKernels.Threads;

    // The GEMM's operands: F16 tensors on an 8-half boundary, on CUDA or under the emulation.
    private bool GemmOnTensorCores(Tensor t) => OnTensorCores(t) || (EmulatesTensorCoreGemm && t.DType == DType.F16 && t.Offset % 8 == 0);
}
