using Engine.Core;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>
/// IEEE binary16 conversions inside kernels. On CUDA they are the PTX conversions (<c>cvt.rn.f16.f32</c>,
/// <c>cvt.f32.f16</c>: one instruction each, where <see cref="ScalarMath"/>'s integer rounding takes some 25, which made
/// the half norms compute-bound); elsewhere <see cref="ScalarMath"/>'s integer versions (ILGPU.Half's own conversion
/// truncates on the CPU accelerator). Both round to nearest even, keep subnormals and overflow to infinity, so every
/// value but NaN gets the same bits on every backend; a NaN stays a NaN (CUDA's canonical one there). The accelerator
/// type is a constant in a compiled kernel, so each backend keeps one path; the PTX conversions need no SM 5.3.
/// </summary>
public static class HalfBits
{
    /// <summary><paramref name="value"/> rounded to binary16 (nearest even), as its bits.</summary>
    public static ushort FromFloat(float value) =>
        Accelerator.CurrentType == AcceleratorType.Cuda ? Interop.FloatAsInt((Half)value) : ScalarMath.ToHalfBits(value);

    /// <summary>The value of binary16 <paramref name="bits"/> (exact).</summary>
    public static float ToFloat(ushort bits) =>
        Accelerator.CurrentType == AcceleratorType.Cuda ? (float)Interop.IntAsFloat(bits) : ScalarMath.FromHalfBits(bits);
}
