using Engine.Core;

namespace Engine.Kernels;

/// <summary>
/// The 16-bit element type of a tensor-core kernel (GEMM, convolution, attention): its mma (fp32 accumulation),
/// the packing of fp32 values into an operand register, and the rounding and widening of stored values.
/// Kernels are generic over it, so the f16 and bf16 forms are the same code with another instruction.
/// </summary>
public interface IMmaElement
{
    /// <summary>c += a b on this element type.</summary>
    void Mma<TCore>(TCore core, ref MmaAcc c, FragA a, FragB b) where TCore : struct, ITensorCore;

    /// <summary>Two fp32 values as one operand register of this type (nearest even), <paramref name="lo"/> in the lower half.</summary>
    uint Pack<TCore>(TCore core, float lo, float hi) where TCore : struct, ITensorCore;

    /// <summary>The 16 bits of <paramref name="value"/> rounded to this type (nearest even).</summary>
    ushort Round(float value);

    /// <summary>The value of 16 stored bits of this type.</summary>
    float Widen(ushort bits);
}

/// <summary>IEEE float16 operands and results.</summary>
public struct F16Element : IMmaElement
{
    /// <inheritdoc />
    public readonly void Mma<TCore>(TCore core, ref MmaAcc c, FragA a, FragB b) where TCore : struct, ITensorCore => core.MmaF16(ref c, a, b);

    /// <inheritdoc />
    public readonly uint Pack<TCore>(TCore core, float lo, float hi) where TCore : struct, ITensorCore => core.PackF16(lo, hi);

    /// <inheritdoc />
    public readonly ushort Round(float value) => HalfBits.FromFloat(value);

    /// <inheritdoc />
    public readonly float Widen(ushort bits) => HalfBits.ToFloat(bits);
}

/// <summary>bfloat16 operands and results (8 significand bits: unit roundoff 2^-9).</summary>
public struct BF16Element : IMmaElement
{
    /// <inheritdoc />
    public readonly void Mma<TCore>(TCore core, ref MmaAcc c, FragA a, FragB b) where TCore : struct, ITensorCore => core.MmaBF16(ref c, a, b);

    /// <inheritdoc />
    public readonly uint Pack<TCore>(TCore core, float lo, float hi) where TCore : struct, ITensorCore => core.PackBF16(lo, hi);

    /// <inheritdoc />
    public readonly ushort Round(float value) => ScalarMath.ToBFloat16(value);

    /// <inheritdoc />
    public readonly float Widen(ushort bits) => ScalarMath.FromBFloat16(bits);
}
