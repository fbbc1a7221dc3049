using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

/// <summary>
/// The one routing point to the tensor-core kernels: on CUDA, attention and Linear-shaped products whose
/// operands are all F16 tensors run on <see cref="TensorCoreAttentionKernels"/> and
/// <see cref="TensorCoreGemmKernels"/> (fp32 accumulation); everything else keeps the fp32 kernels.
/// The op files call <see cref="TryTensorCoreAttention"/> / <see cref="TryTensorCoreMatMul"/> first.
/// </summary>
public sealed partial class IlgpuDevice
{
    private Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>? _tcAttention;
    private Action<KernelConfig, DenseA, GlobalHalf, GlobalHalf, ArrayView<Half>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>? _tcGemm;

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
    /// A Linear-shaped product (a [.., M, K] x b [N, K]^T, F16 operands, bias and output, K a multiple of 8)
    /// on the tensor-core GEMM with the bias and activation fused; otherwise false.
    /// </summary>
    private bool TryTensorCoreMatMul(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        if (!OnTensorCores(a) || !OnTensorCores(b) || !OnTensorCores(output) || (bias is not null && !OnTensorCores(bias))) return false;
        if (transposeA || !transposeB || k % 8 != 0) return false;
        _tcGemm ??= _accelerator.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<Half>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(TensorCoreGemmKernels.Gemm<PtxTensorCore, DenseA>);
        var p = new TcGemmParams
        {
            M = m, N = n, K = k, StrideA = (long)m * k, StrideW = broadcastB ? 0 : (long)n * k, StrideC = (long)m * n,
            HasBias = bias is null ? 0 : 1, Activation = activation, Alpha = alpha,
        };
        var grid = GridOf((n + TensorCoreGemmKernels.BN - 1) / TensorCoreGemmKernels.BN, (m + TensorCoreGemmKernels.BM - 1) / TensorCoreGemmKernels.BM, batch, "MatMul");
        var config = new KernelConfig(grid, new Index3D(TensorCoreGemmKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreGemmKernels.SharedHalves));
        var o = ViewF16(output);
        _tcGemm(config, new DenseA { M = m, K = k, Stride = p.StrideA }, GlobalHalf.Of(ViewF16(a)), GlobalHalf.Of(ViewF16(b)), bias is null ? o : ViewF16(bias), o, o, p);
        return true;
    }
}
