using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// Vector exponentials of the CPU device. <see cref="Exp(Vector512{float})"/> is e^x for activations and
/// norms; <see cref="Exp2(Vector512{float})"/> is 2^x for attention's softmax, whose scores are already in
/// base 2 (the keys are packed scaled by log2 e), so it skips the range reduction by ln 2. They are
/// different polynomials on purpose: each path's results are pinned bit for bit, so neither can be
/// rewritten through the other. Each keeps a 512- and a 256-bit body: written once over
/// <see cref="ISimdWidth{TV}"/>, the clamps against constants lose the JIT's single vmaxps / vminps
/// (inside the generic body the constant is not visible when Max is expanded, so it becomes the IEEE
/// vrangeps + vfixupimmps sequence), which would slow every activation and attention tile.
/// </summary>
internal static class SimdMath
{
    // exp(x) = 2^n e^r with n = round(x / ln 2), |r| <= ln 2 / 2, and e^r from the Cephes expf
    // polynomial (relative error ~2e-7); x is clamped so 2^n stays a normal float.
    internal const float Log2E = 1.44269504088896341f;
    private const float ExpHi = 88.3762626647949f, ExpLo = -87.3365447504019f;
    private const float Ln2Hi = 0.693359375f, Ln2Lo = -2.12194440e-4f;
    private const float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f, P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(ExpLo)), Vector512.Create(ExpHi));
        var n = Vector512.Round(x * Vector512.Create(Log2E));
        var r = x - n * Vector512.Create(Ln2Hi) - n * Vector512.Create(Ln2Lo);
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(P0), r, Vector512.Create(P1));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P2));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P3));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P4));
        y = Vector512.FusedMultiplyAdd(y, r, Vector512.Create(P5));
        y = Vector512.FusedMultiplyAdd(y, r * r, r + Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(127), 23).AsSingle();
        return y * scale;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(ExpLo)), Vector256.Create(ExpHi));
        var n = Vector256.Round(x * Vector256.Create(Log2E));
        var r = x - n * Vector256.Create(Ln2Hi) - n * Vector256.Create(Ln2Lo);
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(P0), r, Vector256.Create(P1));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P2));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P3));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P4));
        y = Vector256.FusedMultiplyAdd(y, r, Vector256.Create(P5));
        y = Vector256.FusedMultiplyAdd(y, r * r, r + Vector256<float>.One);
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n) + Vector256.Create(127), 23).AsSingle();
        return y * scale;
    }

    // 2^x for x <= 0 (a score minus its running max): x = n + f with n = round(x), |f| <= 1/2, and 2^f
    // from a degree-5 polynomial fitted at Chebyshev nodes (relative error 1.6e-7 in float arithmetic);
    // x is clamped so 2^n stays a normal float. AVX-512 applies 2^n with vscalefps.
    private const float Exp2Lo = -125f;
    private const float E0 = 1.000000119e+00f, E1 = 6.931471825e-01f, E2 = 2.402210683e-01f, E3 = 5.550356954e-02f, E4 = 9.676031768e-03f, E5 = 1.339086331e-03f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector512<float> Exp2(Vector512<float> x)
    {
        x = Vector512.Max(x, Vector512.Create(Exp2Lo));
        var n = Vector512.Round(x);
        var f = x - n;
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(E5), f, Vector512.Create(E4));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(E3));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(E2));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(E1));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(E0));
        if (Avx512F.IsSupported) return Avx512F.Scale(y, n);
        return y * Vector512.ShiftLeft(Vector512.ConvertToInt32Native(n) + Vector512.Create(127), 23).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static Vector256<float> Exp2(Vector256<float> x)
    {
        x = Vector256.Max(x, Vector256.Create(Exp2Lo));
        var n = Vector256.Round(x);
        var f = x - n;
        var y = Vector256.FusedMultiplyAdd(Vector256.Create(E5), f, Vector256.Create(E4));
        y = Vector256.FusedMultiplyAdd(y, f, Vector256.Create(E3));
        y = Vector256.FusedMultiplyAdd(y, f, Vector256.Create(E2));
        y = Vector256.FusedMultiplyAdd(y, f, Vector256.Create(E1));
        y = Vector256.FusedMultiplyAdd(y, f, Vector256.Create(E0));
        return y * Vector256.ShiftLeft(Vector256.ConvertToInt32Native(n) + Vector256.Create(127), 23).AsSingle();
    }
}
