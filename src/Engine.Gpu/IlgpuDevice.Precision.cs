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
    protected override bool HandlesHalfActivations(string op) => op is "MatMul" or "Conv2d" or "Attention" or "GroupNorm" or "LayerNorm" or "Softmax"
        or "Binary" or "Transpose" or "ConcatChannels" or "Activate" or "Geglu" or "Affine" or "Modulate" or "GatedAdd"
        or "UpsampleNearest2x" or "SliceChannels" or "CopyWindow" or "Patchify" or "Unpatchify" or "GatherRows";
}
