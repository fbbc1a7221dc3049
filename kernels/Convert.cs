using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>
/// Storage conversions between float32, binary16 and bfloat16. Implicit launch, one thread per element.
/// </summary>
public static class ConvertKernels
{
    // binary16 conversions through HalfBits: round to nearest even on every backend (ILGPU.Half's own conversion
    // truncates on the CPU accelerator), the PTX instructions on CUDA.
    private static Half ToHalf(float v) => Interop.IntAsFloat(HalfBits.FromFloat(v));

    private static float FromHalf(Half h) => HalfBits.ToFloat(Interop.FloatAsInt(h));

    /// <summary>float32 to binary16 (round to nearest even).</summary>
    public static void F32ToF16(Index1D i, ArrayView<float> src, ArrayView<Half> dst) => dst[i] = ToHalf(src[i]);

    /// <summary>binary16 to float32 (exact).</summary>
    public static void F16ToF32(Index1D i, ArrayView<Half> src, ArrayView<float> dst) => dst[i] = FromHalf(src[i]);

    /// <summary>float32 to bfloat16 bits (round to nearest even; NaN stays NaN).</summary>
    public static void F32ToBF16(Index1D i, ArrayView<float> src, ArrayView<ushort> dst) => dst[i] = ScalarMath.ToBFloat16(src[i]);

    /// <summary>bfloat16 bits to float32 (exact).</summary>
    public static void BF16ToF32(Index1D i, ArrayView<ushort> src, ArrayView<float> dst) => dst[i] = ScalarMath.FromBFloat16(src[i]);

    /// <summary>binary16 to bfloat16 through float32.</summary>
    public static void F16ToBF16(Index1D i, ArrayView<Half> src, ArrayView<ushort> dst) => dst[i] = ScalarMath.ToBFloat16(FromHalf(src[i]));

    /// <summary>bfloat16 to binary16 through float32.</summary>
    public static void BF16ToF16(Index1D i, ArrayView<ushort> src, ArrayView<Half> dst) => dst[i] = ToHalf(ScalarMath.FromBFloat16(src[i]));
}
