using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// An 8 x 8 float block transposed in AVX registers (unpack pairs of rows, shuffle pairs of pairs within each
/// 128-bit half, then swap the halves): the one shared kernel of the GEMM packers, the attention's panels and
/// the layout transposes. Callers check <see cref="Avx.IsSupported"/>.
/// </summary>
internal static unsafe class Transpose8x8
{
    /// <summary>dst row i = column i of the block at <paramref name="src"/> (rows <paramref name="srcStride"/> apart), times <paramref name="rowScale"/>[i] when given.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, float* dst, long dstStride, float* rowScale = null)
    {
        Columns(src, srcStride, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        if (rowScale != null)
        {
            c0 *= Vector256.Create(rowScale[0]); c1 *= Vector256.Create(rowScale[1]);
            c2 *= Vector256.Create(rowScale[2]); c3 *= Vector256.Create(rowScale[3]);
            c4 *= Vector256.Create(rowScale[4]); c5 *= Vector256.Create(rowScale[5]);
            c6 *= Vector256.Create(rowScale[6]); c7 *= Vector256.Create(rowScale[7]);
        }
        Store(dst, dstStride, c0, c1, c2, c3, c4, c5, c6, c7);
    }

    /// <summary>dst row i = <paramref name="scale"/> x column i of the block at <paramref name="src"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Run(float* src, long srcStride, float* dst, long dstStride, Vector256<float> scale)
    {
        Columns(src, srcStride, out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        Store(dst, dstStride, c0 * scale, c1 * scale, c2 * scale, c3 * scale, c4 * scale, c5 * scale, c6 * scale, c7 * scale);
    }

    /// <summary>
    /// dst row i = <paramref name="scale"/> x column i of an 8 x 8 block of F16 (or, with <paramref name="bf16"/>, BF16)
    /// elements at <paramref name="src"/> (rows <paramref name="srcStride"/> elements apart), each row widened in registers
    /// (<see cref="HalfWidening"/>) on its way into the transpose, so half weights are packed without a float32 stage.
    /// Callers check <see cref="Avx2.IsSupported"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void RunHalf(ushort* src, long srcStride, bool bf16, float* dst, long dstStride, Vector256<float> scale)
    {
        Columns(HalfWidening.Widen8(src, bf16), HalfWidening.Widen8(src + srcStride, bf16),
            HalfWidening.Widen8(src + 2 * srcStride, bf16), HalfWidening.Widen8(src + 3 * srcStride, bf16),
            HalfWidening.Widen8(src + 4 * srcStride, bf16), HalfWidening.Widen8(src + 5 * srcStride, bf16),
            HalfWidening.Widen8(src + 6 * srcStride, bf16), HalfWidening.Widen8(src + 7 * srcStride, bf16),
            out var c0, out var c1, out var c2, out var c3, out var c4, out var c5, out var c6, out var c7);
        Store(dst, dstStride, c0 * scale, c1 * scale, c2 * scale, c3 * scale, c4 * scale, c5 * scale, c6 * scale, c7 * scale);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns(float* src, long stride, out Vector256<float> c0, out Vector256<float> c1, out Vector256<float> c2,
        out Vector256<float> c3, out Vector256<float> c4, out Vector256<float> c5, out Vector256<float> c6, out Vector256<float> c7) =>
        Columns(Avx.LoadVector256(src), Avx.LoadVector256(src + stride), Avx.LoadVector256(src + 2 * stride), Avx.LoadVector256(src + 3 * stride),
            Avx.LoadVector256(src + 4 * stride), Avx.LoadVector256(src + 5 * stride), Avx.LoadVector256(src + 6 * stride),
            Avx.LoadVector256(src + 7 * stride), out c0, out c1, out c2, out c3, out c4, out c5, out c6, out c7);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Columns(Vector256<float> r0, Vector256<float> r1, Vector256<float> r2, Vector256<float> r3,
        Vector256<float> r4, Vector256<float> r5, Vector256<float> r6, Vector256<float> r7,
        out Vector256<float> c0, out Vector256<float> c1, out Vector256<float> c2,
        out Vector256<float> c3, out Vector256<float> c4, out Vector256<float> c5, out Vector256<float> c6, out Vector256<float> c7)
    {
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        c0 = Avx.Permute2x128(u0, u4, 0x20); c1 = Avx.Permute2x128(u1, u5, 0x20);
        c2 = Avx.Permute2x128(u2, u6, 0x20); c3 = Avx.Permute2x128(u3, u7, 0x20);
        c4 = Avx.Permute2x128(u0, u4, 0x31); c5 = Avx.Permute2x128(u1, u5, 0x31);
        c6 = Avx.Permute2x128(u2, u6, 0x31); c7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* dst, long stride, Vector256<float> c0, Vector256<float> c1, Vector256<float> c2, Vector256<float> c3,
        Vector256<float> c4, Vector256<float> c5, Vector256<float> c6, Vector256<float> c7)
    {
        c0.Store(dst); c1.Store(dst + stride); c2.Store(dst + 2 * stride); c3.Store(dst + 3 * stride);
        c4.Store(dst + 4 * stride); c5.Store(dst + 5 * stride); c6.Store(dst + 6 * stride); c7.Store(dst + 7 * stride);
    }
}
