namespace Engine.Sampling.Rng;

/// <summary>
/// The single-precision Cephes-style <c>log</c> and <c>sincos</c> approximations of PyTorch's AVX2 normal
/// kernel, evaluated op for op in float32 with the fused multiply-adds its compiled code contracts. Each
/// rounding step matters for bit-exactness, so nothing here may be reordered or simplified.
/// </summary>
internal static class CephesFloat
{
    private const float P0 = 7.0376836292E-2f, P1 = -1.1514610310E-1f, P2 = 1.1676998740E-1f, P3 = -1.2420140846E-1f,
        P4 = 1.4249322787E-1f, P5 = -1.6668057665E-1f, P6 = 2.0000714765E-1f, P7 = -2.4999993993E-1f, P8 = 3.3333331174E-1f;

    /// <summary>Natural logarithm of x in (0, 1].</summary>
    public static float Log(float x)
    {
        x = Math.Max(x, BitConverter.UInt32BitsToSingle(0x00800000)); // smallest normal
        uint bits = BitConverter.SingleToUInt32Bits(x);
        float e = (float)((int)(bits >> 23) - 127);
        e += 1f;
        float m = BitConverter.UInt32BitsToSingle((bits & 0x807FFFFFu) | BitConverter.SingleToUInt32Bits(0.5f));
        if (m < 0.707106781186547524f)
        {
            e -= 1f;
            x = (m - 1f) + m;
        }
        else x = (m - 1f) + 0f;
        float z = x * x;
        float y = P0;
        y = MathF.FusedMultiplyAdd(y, x, P1);
        y = MathF.FusedMultiplyAdd(y, x, P2);
        y = MathF.FusedMultiplyAdd(y, x, P3);
        y = MathF.FusedMultiplyAdd(y, x, P4);
        y = MathF.FusedMultiplyAdd(y, x, P5);
        y = MathF.FusedMultiplyAdd(y, x, P6);
        y = MathF.FusedMultiplyAdd(y, x, P7);
        y = MathF.FusedMultiplyAdd(y, x, P8);
        y *= x;
        y = MathF.FusedMultiplyAdd(y, z, e * -2.12194440e-4f);
        y = MathF.FusedMultiplyAdd(z, -0.5f, y);
        x += y;
        return MathF.FusedMultiplyAdd(e, 0.693359375f, x);
    }

    /// <summary>Sine and cosine of a non-negative x.</summary>
    public static (float Sin, float Cos) SinCos(float x)
    {
        int j = (int)(x * 1.27323954473516f);
        j = (j + 1) & ~1;
        float y = j;
        x = MathF.FusedMultiplyAdd(y, -0.78515625f, x);
        x = MathF.FusedMultiplyAdd(y, -2.4187564849853515625e-4f, x);
        x = MathF.FusedMultiplyAdd(y, -3.77489497744594108e-8f, x);
        float z = x * x;

        float c = MathF.FusedMultiplyAdd(2.443315711809948E-5f, z, -1.388731625493765E-3f);
        c = MathF.FusedMultiplyAdd(c, z, 4.166664568298827E-2f);
        c *= z;
        c = MathF.FusedMultiplyAdd(c, z, -(z * 0.5f));
        c += 1f;

        float s = MathF.FusedMultiplyAdd(-1.9515295891E-4f, z, 8.3321608736E-3f);
        s = MathF.FusedMultiplyAdd(s, z, -1.6666654611E-1f);
        s *= z;
        s = MathF.FusedMultiplyAdd(s, x, x);

        float sin = (j & 2) == 0 ? s : c, cos = (j & 2) == 0 ? c : s;
        if ((j & 4) != 0) sin = -sin;
        if (((j - 2) & 4) == 0) cos = -cos;
        return (sin, cos);
    }
}
