using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// F16 / BF16 to float32 in AVX2 registers, eight elements at a time, for packers that widen half weights on the fly
/// (.NET exposes no F16C conversion). F16 by its bit fields: a normal number moves its exponent and mantissa into
/// place and rebiases the exponent (15 -> 127), infinities and NaNs keep the all-ones exponent, and subnormals (and
/// zeros) are their integer mantissa times 2^-24, which float32 holds exactly; so every value is widened exactly.
/// BF16 is the upper half of a binary32.
/// </summary>
internal static unsafe class HalfWidening
{
    /// <summary>The eight F16 (or BF16) elements at <paramref name="src"/> as float32; callers check <see cref="Avx2.IsSupported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Widen8(ushort* src, bool bf16)
    {
        var h = Avx2.ConvertToVector256Int32(src);
        if (bf16) return Vector256.ShiftLeft(h, 16).AsSingle();
        var magnitude = h & Vector256.Create(0x7FFF);
        var sign = Vector256.ShiftLeft(h & Vector256.Create(0x8000), 16);
        // Exponent and mantissa shifted into place, exponent rebiased by 112; once more for infinities and NaNs.
        var bits = Vector256.ShiftLeft(magnitude, 13) + Vector256.Create(112 << 23);
        bits += Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00)) & Vector256.Create(112 << 23);
        var subnormal = Vector256.ConvertToSingle(magnitude) * Vector256.Create(1f / (1 << 24));
        var isSubnormal = Vector256.LessThan(magnitude, Vector256.Create(0x0400));
        return (Vector256.ConditionalSelect(isSubnormal, subnormal.AsInt32(), bits) | sign).AsSingle();
    }
}
