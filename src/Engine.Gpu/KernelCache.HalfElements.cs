using Engine.Core;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Gpu;

internal sealed partial class KernelCache
{
    // Element-wise and data-movement kernels on half activations: the any-storage forms of the pointwise kernels per
    // (input, output) storage, and the layout kernels on 16-bit elements (f16 and bf16 tensors as their bits).

    /// <summary><see cref="PointwiseKernels.ActivateAny{TX, TO}"/>.</summary>
    public Action<Index1D, TX, TO, Activation> ActivateAny<TX, TO>() where TX : struct, IWeightView where TO : struct, IOutputView =>
        Product("activate", typeof((TX, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TX, TO, Activation>(PointwiseKernels.ActivateAny<TX, TO>));

    /// <summary><see cref="PointwiseKernels.GegluAny{TX, TO}"/>.</summary>
    public Action<Index1D, TX, TO, int> GegluAny<TX, TO>() where TX : struct, IWeightView where TO : struct, IOutputView =>
        Product("geglu", typeof((TX, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TX, TO, int>(PointwiseKernels.GegluAny<TX, TO>));

    /// <summary><see cref="PointwiseKernels.AffineAny{TX, TO}"/>.</summary>
    public Action<Index1D, TX, TO, float, float> AffineAny<TX, TO>() where TX : struct, IWeightView where TO : struct, IOutputView =>
        Product("affine", typeof((TX, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TX, TO, float, float>(PointwiseKernels.AffineAny<TX, TO>));

    /// <summary><see cref="PointwiseKernels.ModulateAny{TX, TO}"/>.</summary>
    public Action<Index1D, TX, ArrayView<float>, ArrayView<float>, TO, int, int> ModulateAny<TX, TO>() where TX : struct, IWeightView where TO : struct, IOutputView =>
        Product("modulate", typeof((TX, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TX, ArrayView<float>, ArrayView<float>, TO, int, int>(PointwiseKernels.ModulateAny<TX, TO>));

    /// <summary><see cref="PointwiseKernels.GatedAddAny{TX, TO}"/>.</summary>
    public Action<Index1D, TX, TX, ArrayView<float>, TO, int, int> GatedAddAny<TX, TO>() where TX : struct, IWeightView where TO : struct, IOutputView =>
        Product("gated-add", typeof((TX, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TX, TX, ArrayView<float>, TO, int, int>(PointwiseKernels.GatedAddAny<TX, TO>));

    /// <summary><see cref="LayoutKernels.GatherRows{TW, TO}"/> for a table of storage <typeparamref name="TW"/> and an output of <typeparamref name="TO"/>.</summary>
    public Action<Index1D, TW, ArrayView<float>, TO, int, int> GatherRows<TW, TO>() where TW : struct, IWeightView where TO : struct, IOutputView =>
        Product("gather-rows", typeof((TW, TO)), a => a.LoadAutoGroupedStreamKernel<Index1D, TW, ArrayView<float>, TO, int, int>(LayoutKernels.GatherRows<TW, TO>));

    /// <summary><see cref="LayoutKernels.UpsampleNearest2xOf{T}"/> on 16-bit elements.</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, int, int> UpsampleNearest2xHalf =>
        Product("upsample", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, int, int>(LayoutKernels.UpsampleNearest2xOf<Half>));

    /// <summary><see cref="LayoutKernels.SliceChannelsOf{T}"/> on 16-bit elements.</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, int, int, int> SliceChannelsHalf =>
        Product("slice", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, int, int, int>(LayoutKernels.SliceChannelsOf<Half>));

    /// <summary><see cref="LayoutKernels.CopyWindowOf{T}"/> on 16-bit elements.</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, WindowParams> CopyWindowHalf =>
        Product("copy-window", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, WindowParams>(LayoutKernels.CopyWindowOf<Half>));

    /// <summary><see cref="LayoutKernels.PatchifyOf{T}"/> on 16-bit elements.</summary>
    public Action<Index1D, ArrayView<Half>, ArrayView<Half>, PatchParams> PatchifyHalf =>
        Product("patchify", typeof(Half), a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<Half>, ArrayView<Half>, PatchParams>(LayoutKernels.PatchifyOf<Half>));
}
