using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

internal sealed partial class KernelCache
{
    // The half-precision norm and softmax kernels per 16-bit format (F16Format, BF16Format).

    /// <summary><see cref="HalfNormKernels.GroupNorm{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, GroupNormParams> GroupNormHalf<TF>() where TF : struct, IHalfFormat =>
        Product("groupnorm", typeof(TF), a => a.LoadStreamKernel<HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, GroupNormParams>(HalfNormKernels.GroupNorm<TF>));

    /// <summary><see cref="HalfNormKernels.GroupNormPartial{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, ArrayView<float>, GroupNormParams> GroupNormPartialHalf<TF>() where TF : struct, IHalfFormat =>
        Product("groupnorm-partial", typeof(TF), a => a.LoadStreamKernel<HalfTensor, ArrayView<float>, GroupNormParams>(HalfNormKernels.GroupNormPartial<TF>));

    /// <summary><see cref="HalfNormKernels.GroupNormApply{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, ArrayView<float>, ArrayView<float>, ArrayView<float>, HalfTensor, GroupNormParams> GroupNormApplyHalf<TF>() where TF : struct, IHalfFormat =>
        Product("groupnorm-apply", typeof(TF), a => a.LoadStreamKernel<HalfTensor, ArrayView<float>, ArrayView<float>, ArrayView<float>, HalfTensor, GroupNormParams>(HalfNormKernels.GroupNormApply<TF>));

    /// <summary><see cref="HalfNormKernels.LayerNorm{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, int, float, int, int> LayerNormHalf<TF>() where TF : struct, IHalfFormat =>
        Product("layernorm", typeof(TF), a => a.LoadStreamKernel<HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, int, float, int, int>(HalfNormKernels.LayerNorm<TF>));

    /// <summary><see cref="HalfNormKernels.LayerNormRows{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, int, int, float, int, int> LayerNormRowsHalf<TF>() where TF : struct, IHalfFormat =>
        Product("layernorm-rows", typeof(TF), a => a.LoadStreamKernel<HalfTensor, ArrayView<float>, ArrayView<float>, HalfTensor, int, int, float, int, int>(HalfNormKernels.LayerNormRows<TF>));

    /// <summary><see cref="HalfSoftmaxKernels.Softmax{TF}"/> for format <typeparamref name="TF"/>.</summary>
    public Action<KernelConfig, HalfTensor, HalfTensor, int> SoftmaxHalf<TF>() where TF : struct, IHalfFormat =>
        Product("softmax", typeof(TF), a => a.LoadStreamKernel<HalfTensor, HalfTensor, int>(HalfSoftmaxKernels.Softmax<TF>));
}
