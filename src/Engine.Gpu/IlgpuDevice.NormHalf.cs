using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// GroupNorm, LayerNorm and Softmax over F16 / BF16 activations (<see cref="HalfNormKernels"/>,
/// <see cref="HalfSoftmaxKernels"/>): half input and output of one format, float32 affine parameters (half ones
/// are widened by the caller), fp32 statistics, the float32 kernels' launch shapes and split.
/// </summary>
public sealed partial class IlgpuDevice
{
    /// <summary>A half tensor's whole buffer as 16-bit elements and 64-bit quads, and its first element.</summary>
    private static HalfTensor HalfOf(Tensor t)
    {
        var buffer = (IlgpuBuffer)t.Buffer;
        ArrayView<ushort> elements = t.DType == DType.F16 ? ((ArrayView<ILGPU.Half>)buffer.F16!.View).Cast<ushort>() : buffer.BF16!.View;
        // Only whole quads: the cast view ends at the last multiple of four elements.
        var quads = elements.SubView(0, elements.Length / HalfNormKernels.Quad * HalfNormKernels.Quad).Cast<ulong>();
        return new HalfTensor { Elements = elements, Quads = quads, Base = t.Offset };
    }

    /// <summary>Statistics kernels' dynamic shared memory: the reduction scratch and the quad tile.</summary>
    private SharedMemoryConfig HalfNormShared => SharedMemoryConfig.RequestDynamic<float>((1 + HalfNormKernels.TileFactor) * _reductionGroup);

    private void GroupNormHalf(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        if (x.DType == DType.F16) GroupNormHalf<F16Format>(x, gamma, beta, output, groups, eps, silu);
        else GroupNormHalf<BF16Format>(x, gamma, beta, output, groups, eps, silu);
    }

    private void GroupNormHalf<TF>(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu) where TF : struct, IHalfFormat
    {
        int n = x.Dim(0);
        var p = GroupNormArguments(x, gamma, beta, groups, eps, silu);
        var (hx, ho) = (HalfOf(x), HalfOf(output));
        var g = gamma is null ? BiasView(null) : View(gamma);
        var b = beta is null ? BiasView(null) : View(beta);
        var group = new Index3D(_reductionGroup, 1, 1);
        int splits = GroupNormSplits((long)n * groups, (long)p.ChannelsPerGroup * p.Spatial);
        if (splits == 1)
        {
            _kernels.GroupNormHalf<TF>()(new KernelConfig(GridOf((long)n * groups, 1, 1, "GroupNorm"), group, HalfNormShared), hx, g, b, ho, p);
            return;
        }
        var partials = Scratch((long)n * groups * splits * 2);
        var grid = GridOf((long)n * groups, splits, 1, "GroupNorm");
        _kernels.GroupNormPartialHalf<TF>()(new KernelConfig(grid, group, SharedMemoryConfig.RequestDynamic<float>(_reductionGroup)), hx, partials, p);
        _kernels.GroupNormApplyHalf<TF>()(new KernelConfig(grid, group), hx, partials, g, b, ho, p);
    }

    private void LayerNormHalf(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        if (x.DType == DType.F16) LayerNormHalf<F16Format>(x, gamma, beta, output, eps);
        else LayerNormHalf<BF16Format>(x, gamma, beta, output, eps);
    }

    private void LayerNormHalf<TF>(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps) where TF : struct, IHalfFormat
    {
        int d = x.Dim(-1);
        if (WarpRowNorms)
        {
            // One warp per row (HalfNormKernels.LayerNormRows): G / 32 rows per block.
            int rows = (int)(x.Length / d), perBlock = _reductionGroup / _accelerator.WarpSize;
            var rowsConfig = new KernelConfig(GridOf((rows + perBlock - 1) / perBlock, 1, 1, "LayerNorm"), new Index3D(_reductionGroup, 1, 1));
            _kernels.LayerNormRowsHalf<TF>()(rowsConfig, HalfOf(x), gamma is null ? BiasView(null) : View(gamma), beta is null ? BiasView(null) : View(beta),
                HalfOf(output), rows, d, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
            return;
        }
        var config = new KernelConfig(GridOf(x.Length / d, 1, 1, "LayerNorm"), new Index3D(_reductionGroup, 1, 1), HalfNormShared);
        _kernels.LayerNormHalf<TF>()(config, HalfOf(x), gamma is null ? BiasView(null) : View(gamma), beta is null ? BiasView(null) : View(beta),
            HalfOf(output), d, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
    }

    /// <summary>
    /// Whether half LayerNorm runs a warp per row (<see cref="HalfNormKernels.LayerNormRows{TF}"/>): on CUDA and the CPU
    /// accelerator with 32-lane warps, whose shuffles the kernel uses, and groups of whole warps; other backends keep the
    /// one-block kernel.
    /// </summary>
    internal bool WarpRowNorms => _accelerator.AcceleratorType is AcceleratorType.Cuda or AcceleratorType.CPU
        && _accelerator.WarpSize == 32 && _reductionGroup % 32 == 0;

    private void SoftmaxHalf(Tensor x, Tensor output, int d)
    {
        var config = new KernelConfig(GridOf(x.Length / d, 1, 1, "Softmax"), new Index3D(_reductionGroup, 1, 1), HalfNormShared);
        if (x.DType == DType.F16) _kernels.SoftmaxHalf<F16Format>()(config, HalfOf(x), HalfOf(output), d);
        else _kernels.SoftmaxHalf<BF16Format>()(config, HalfOf(x), HalfOf(output), d);
    }
}
