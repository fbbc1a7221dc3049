using Engine.Core;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    /// <remarks>
    /// Every ILGPU backend (CUDA, OpenCL, the CPU accelerator) takes F16 and BF16 activations. GEMM and
    /// convolution read and write them in the kernel (float32 accumulation, one rounding on store), as do
    /// GroupNorm (+ SiLU), LayerNorm and Softmax (fp32 statistics, <see cref="Engine.Kernels.HalfNormKernels"/>,
    /// <see cref="Engine.Kernels.HalfSoftmaxKernels"/>), Binary (add, sub, mul, div with broadcasting: each operand read
    /// in its own storage, the result rounded once), Activate, Geglu, Affine, Modulate and GatedAdd (the same, when the
    /// activations and the output share a half type), and Transpose, ConcatChannels, UpsampleNearest2x, SliceChannels,
    /// CopyWindow and Patchify / Unpatchify (16-bit moves when input and output share a half type);
    /// attention gets them as they are, so a backend-specific kernel can take them, and stages them
    /// otherwise; the other ops compute on float32 stand-ins (<see cref="HalfStaging"/>).
    /// </remarks>
    public override bool SupportsHalfActivations => true;

    /// <inheritdoc />
    /// <remarks>
    /// GEMM, convolution, attention, Binary and GatherRows take any mix of storages. The others' half kernels read and
    /// write one 16-bit format, so they take half data only when all of it shares that format (the models keep one
    /// activation type through a network); a mix goes through float32 stand-ins in the base class.
    /// </remarks>
    protected override bool HandlesHalfActivations(string op, params ReadOnlySpan<Tensor> data) => op switch
    {
        "MatMul" or "Conv2d" or "Attention" or "Binary" or "GatherRows" => true,
        "GroupNorm" or "LayerNorm" or "Softmax" or "Transpose" or "ConcatChannels" or "Activate" or "Geglu" or "Affine" or "Modulate"
            or "GatedAdd" or "UpsampleNearest2x" or "SliceChannels" or "CopyWindow" or "Patchify" or "Unpatchify" => SameHalf(data),
        _ => false,
    };
}
