using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Core;

namespace Engine.Cpu;

/// <summary>
/// An element-wise float function written once per width: a scalar body (the tail, and the reference
/// the kernels share through <see cref="ScalarMath"/>) and 256- and 512-bit bodies that compute the same
/// formula. <see cref="Pointwise.Map{TOp}"/> is the one loop that drives every operator. Operators are
/// readonly structs; those with parameters (a norm's mean and scale) carry them as fields.
/// </summary>
internal interface IUnaryOperator
{
    float Invoke(float x);
    Vector256<float> Invoke(Vector256<float> x);
    Vector512<float> Invoke(Vector512<float> x);
}

/// <summary>The shared loop of the CPU device's element-wise operators.</summary>
internal static unsafe class Pointwise
{
    /// <summary>
    /// y[i] = op(x[i]) with the widest vector body the CPU has (512-bit, else 256-bit, else scalar) for every
    /// element, the tail included (as one zero-padded vector): an element's value then does not depend on where
    /// it lies in the span, so a sample gets the same bits at any batch size or chunking (the scalar bodies use
    /// the accurate MathF functions and round differently). Operators are
    /// structs, so each instantiation is its own method with the operator inlined (as the hand-written
    /// loops were). x and y may be the same span. Left to tiered compilation, so its first calls in a process
    /// run tier-0 code (tens of times slower on large spans): kernels that run on whole activations from the
    /// first step on have their own fully optimised loops (GroupNorm's <see cref="NormKernels.NormalizePlane"/>).
    /// </summary>
    public static void Map<TOp>(ReadOnlySpan<float> x, Span<float> y, TOp op = default) where TOp : struct, IUnaryOperator
    {
        int i = 0, n = x.Length;
        fixed (float* px = x, py = y)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                for (; i <= n - Vector512<float>.Count; i += Vector512<float>.Count)
                    op.Invoke(Vector512.Load(px + i)).Store(py + i);
                if (i < n) Tail512(px + i, py + i, n - i, op);
                return;
            }
            if (Vector256.IsHardwareAccelerated)
            {
                for (; i <= n - Vector256<float>.Count; i += Vector256<float>.Count)
                    op.Invoke(Vector256.Load(px + i)).Store(py + i);
                if (i < n) Tail256(px + i, py + i, n - i, op);
                return;
            }
        }
        for (; i < n; i++) y[i] = op.Invoke(x[i]);
    }

    /// <summary>The last <paramref name="count"/> (&lt; 16) elements of a span through the 512-bit body, zero-padded.</summary>
    private static void Tail512<TOp>(float* x, float* y, int count, TOp op) where TOp : struct, IUnaryOperator
    {
        float* buffer = stackalloc float[16];
        Vector512<float>.Zero.Store(buffer);
        new ReadOnlySpan<float>(x, count).CopyTo(new Span<float>(buffer, count));
        op.Invoke(Vector512.Load(buffer)).Store(buffer);
        new ReadOnlySpan<float>(buffer, count).CopyTo(new Span<float>(y, count));
    }

    /// <summary>The last <paramref name="count"/> (&lt; 8) elements of a span through the 256-bit body, zero-padded.</summary>
    private static void Tail256<TOp>(float* x, float* y, int count, TOp op) where TOp : struct, IUnaryOperator
    {
        float* buffer = stackalloc float[8];
        Vector256<float>.Zero.Store(buffer);
        new ReadOnlySpan<float>(x, count).CopyTo(new Span<float>(buffer, count));
        op.Invoke(Vector256.Load(buffer)).Store(buffer);
        new ReadOnlySpan<float>(buffer, count).CopyTo(new Span<float>(y, count));
    }

    /// <summary>
    /// y[i] = a[i] * op(gate[i]) over <paramref name="count"/> floats in one pass (GEGLU's gated product:
    /// the same rounding as applying op, then multiplying). y may be a or gate. Like <see cref="Map{TOp}"/>, every
    /// element goes through the widest vector body, the tail as one zero-padded vector.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MapGated<TOp>(float* a, float* gate, float* y, int count, TOp op = default) where TOp : struct, IUnaryOperator
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= count - Vector512<float>.Count; i += Vector512<float>.Count)
                (Vector512.Load(a + i) * op.Invoke(Vector512.Load(gate + i))).Store(y + i);
            if (i < count)
            {
                float* g = stackalloc float[16];
                Tail512(gate + i, g, count - i, op);
                for (int t = 0; t < count - i; t++) y[i + t] = a[i + t] * g[t];
            }
            return;
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= count - Vector256<float>.Count; i += Vector256<float>.Count)
                (Vector256.Load(a + i) * op.Invoke(Vector256.Load(gate + i))).Store(y + i);
            if (i < count)
            {
                float* g = stackalloc float[8];
                Tail256(gate + i, g, count - i, op);
                for (int t = 0; t < count - i; t++) y[i + t] = a[i + t] * g[t];
            }
            return;
        }
        for (; i < count; i++) y[i] = a[i] * op.Invoke(gate[i]);
    }
}

/// <summary>The identity, for operators that take an optional activation.</summary>
internal readonly struct IdentityOperator : IUnaryOperator
{
    public float Invoke(float x) => x;

    public Vector256<float> Invoke(Vector256<float> x) => x;

    public Vector512<float> Invoke(Vector512<float> x) => x;
}

/// <summary>
/// SiLU, x / (1 + exp(-x)), with <see cref="SimdMath"/>'s exp (TensorPrimitives' exp is accurate but
/// about 4x slower, and SiLU after GroupNorm runs on every UNet activation).
/// </summary>
internal readonly struct SiluOperator : IUnaryOperator
{
    public float Invoke(float x) => ScalarMath.Silu(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Invoke(Vector256<float> x) => x / (Vector256<float>.One + SimdMath.Exp(-x));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Invoke(Vector512<float> x) => x / (Vector512<float>.One + SimdMath.Exp(-x));
}

/// <summary>
/// GELU, tanh form: 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as the equal
/// x / (1 + exp(-2u)): one pass with the SIMD exp. The GEMM epilogue calls it on short row segments of
/// every feed-forward layer, so a multi-pass form costs more in calls than in math.
/// </summary>
internal readonly struct GeluTanhOperator : IUnaryOperator
{
    private const float TwoC = 2 * 0.79788456080286536f, Cubic = 0.044715f;

    public float Invoke(float x) => ScalarMath.GeluTanh(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Invoke(Vector256<float> x)
    {
        var u2 = x * Vector256.FusedMultiplyAdd(x * x, Vector256.Create(Cubic * TwoC), Vector256.Create(TwoC));
        return x / (Vector256<float>.One + SimdMath.Exp(-u2));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Invoke(Vector512<float> x)
    {
        var u2 = x * Vector512.FusedMultiplyAdd(x * x, Vector512.Create(Cubic * TwoC), Vector512.Create(TwoC));
        return x / (Vector512<float>.One + SimdMath.Exp(-u2));
    }
}

/// <summary>
/// Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), with erf as <see cref="ScalarMath.Erf"/> (Abramowitz and
/// Stegun 7.1.26, |error| &lt;= 1.5e-7) and the SIMD exp: erf(|x| / sqrt 2) = 1 - poly e^(-a^2), so
/// GELU = x (1 - q) for x &gt;= 0 and x q below, with q = 0.5 poly e^(-a^2). It runs over every GEGLU
/// feed-forward of the SD-class UNets, where a scalar loop cost as much as the GEMM before it.
/// </summary>
internal readonly struct GeluErfOperator : IUnaryOperator
{
    private const float InvSqrt2 = 0.70710678118654752f, P = 0.3275911f;
    private const float A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f, A4 = -1.453152027f, A5 = 1.061405429f;

    public float Invoke(float x) => ScalarMath.GeluErf(x);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector256<float> Invoke(Vector256<float> x)
    {
        var a = Vector256.Abs(x) * Vector256.Create(InvSqrt2);
        var t = Vector256<float>.One / Vector256.FusedMultiplyAdd(a, Vector256.Create(P), Vector256<float>.One);
        var poly = Vector256.FusedMultiplyAdd(t, Vector256.Create(A5), Vector256.Create(A4));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A3));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A2));
        poly = Vector256.FusedMultiplyAdd(poly, t, Vector256.Create(A1)) * t;
        var q = Vector256.Create(0.5f) * poly * SimdMath.Exp(-(a * a));
        return x * Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256<float>.Zero), Vector256<float>.One - q, q);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Invoke(Vector512<float> x)
    {
        var a = Vector512.Abs(x) * Vector512.Create(InvSqrt2);
        var t = Vector512<float>.One / Vector512.FusedMultiplyAdd(a, Vector512.Create(P), Vector512<float>.One);
        var poly = Vector512.FusedMultiplyAdd(t, Vector512.Create(A5), Vector512.Create(A4));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A3));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A2));
        poly = Vector512.FusedMultiplyAdd(poly, t, Vector512.Create(A1)) * t;
        var q = Vector512.Create(0.5f) * poly * SimdMath.Exp(-(a * a));
        return x * Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512<float>.Zero), Vector512<float>.One - q, q);
    }
}
