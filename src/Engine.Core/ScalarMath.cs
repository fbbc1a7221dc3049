namespace Engine.Core;

/// <summary>
/// Scalar float math shared by the ILGPU kernels and the CPU device, so both round alike. Bit casts go
/// through <see cref="BitConverter"/>, which ILGPU maps onto its own intrinsics when it compiles a kernel.
/// </summary>
public static class ScalarMath
{
    /// <summary>
    /// erf(x) in float32: Abramowitz and Stegun 7.1.26 (|error| &lt;= 1.5e-7). Evaluated in float so that
    /// every ILGPU backend compiles it (double transcendentals need libdevice on CUDA) and the CPU
    /// device and the kernels round alike.
    /// </summary>
    public static float Erf(float x)
    {
        float ax = x < 0f ? -x : x;
        float t = 1f / (1f + 0.3275911f * ax);
        float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
        float y = 1f - poly * MathF.Exp(-ax * ax);
        return x < 0f ? -y : y;
    }

    /// <summary>
    /// e^x rounded once to float32 from a double-precision evaluation (range reduction by ln 2, degree-11
    /// Taylor polynomial, exponent set by bits): correctly rounded but for rare ties, on every backend.
    /// CUDA's float exp is an approximation with errors of a few ulp, which the timestep embedding
    /// multiplies by arguments up to 1e6 radians; double add/multiply need no libdevice.
    /// </summary>
    public static float ExpAccurate(float x)
    {
        if (float.IsNaN(x)) return x;
        if (x > 88.8f) return float.PositiveInfinity;
        if (x < -104f) return 0f;
        double k = Math.Floor(x * 1.4426950408889634 + 0.5);
        double r = x - k * 0.69314718055994531;
        double p = 1.0 + r * (1.0 + r * (1.0 / 2 + r * (1.0 / 6 + r * (1.0 / 24 + r * (1.0 / 120 + r * (1.0 / 720 + r * (1.0 / 5040
            + r * (1.0 / 40320 + r * (1.0 / 362880 + r * (1.0 / 3628800 + r * (1.0 / 39916800)))))))))));
        return (float)(p * BitConverter.Int64BitsToDouble(((long)k + 1023) << 52));
    }

    /// <summary>x * sigmoid(x).</summary>
    public static float Silu(float x) => x / (1f + MathF.Exp(-x));

    /// <summary>Exact GELU, 0.5 x (1 + erf(x / sqrt 2)).</summary>
    public static float GeluErf(float x) => 0.5f * x * (1f + Erf(x * 0.70710678118654752f));

    /// <summary>
    /// GELU with the tanh approximation, 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as the equal
    /// x / (1 + exp(-2u)): for negative x, 1 + tanh(u) cancels (at x = -3.5 it is 3e-4, so a tanh a few ulp off, as
    /// CUDA's is, costs 1e-4 of the result), while the exp form has no cancellation. The CPU's vector body is the same
    /// but for its fused multiply-add, which ILGPU leaves an unresolved extern function in PTX.
    /// </summary>
    public static float GeluTanh(float x) =>
        x / (1f + MathF.Exp(-(x * (x * x * (0.044715f * (2 * 0.79788456080286536f)) + 2 * 0.79788456080286536f))));

    /// <summary>Applies <paramref name="kind"/> to <paramref name="x"/>.</summary>
    public static float Activate(float x, Activation kind) => kind switch
    {
        Activation.SiLU => Silu(x),
        Activation.GeluErf => GeluErf(x),
        Activation.GeluTanh => GeluTanh(x),
        Activation.Relu => x > 0f ? x : 0f,
        _ => x,
    };

    /// <summary>x * c + addend, rounded twice like TensorPrimitives.MultiplyAdd (not a fused FMA).</summary>
    public static float MultiplyAdd(float x, float c, float addend) => x * c + addend;

    /// <summary>float32 to bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN.</summary>
    public static ushort ToBFloat16(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40u);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>bfloat16 bits to float32 (exact).</summary>
    public static float FromBFloat16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>
    /// float32 to IEEE binary16 bits, round to nearest even (overflow to infinity, subnormals kept,
    /// NaN stays NaN), in integer arithmetic so every backend rounds exactly like System.Half.
    /// </summary>
    public static ushort ToHalfBits(float value)
    {
        uint x = (uint)BitConverter.SingleToInt32Bits(value);
        uint sign = (x >> 16) & 0x8000u, abs = x & 0x7FFFFFFFu;
        if (abs >= 0x7F800000u) return (ushort)(sign | (abs > 0x7F800000u ? 0x7E00u | ((abs >> 13) & 0x3FFu) : 0x7C00u));
        if (abs >= 0x477FF000u) return (ushort)(sign | 0x7C00u);
        if (abs < 0x38800000u)
        {
            if (abs < 0x33000000u) return (ushort)sign;
            int shift = 126 - (int)(abs >> 23);
            uint m = (abs & 0x7FFFFFu) | 0x800000u;
            uint r = m >> shift, rem = m & ((1u << shift) - 1u), halfway = 1u << (shift - 1);
            if (rem > halfway || (rem == halfway && (r & 1u) != 0)) r++;
            return (ushort)(sign | r);
        }
        uint bits = (abs - 0x38000000u) >> 13, tail = abs & 0x1FFFu;
        if (tail > 0x1000u || (tail == 0x1000u && (bits & 1u) != 0)) bits++;
        return (ushort)(sign | bits);
    }

    /// <summary>IEEE binary16 bits to float32 (exact).</summary>
    public static float FromHalfBits(ushort bits)
    {
        uint h = bits, sign = (h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
        if (e == 0)
        {
            float v = m * (1f / 16777216f);
            return sign != 0 ? -v : v;
        }
        if (e == 31) return BitConverter.Int32BitsToSingle((int)(sign | 0x7F800000u | (m << 13)));
        return BitConverter.Int32BitsToSingle((int)(sign | ((e + 112u) << 23) | (m << 13)));
    }
}
