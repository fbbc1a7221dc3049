using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu;

internal static unsafe partial class DirectConv
{
    /// <summary>A compile-time count of position vectors: each instantiation of the kernels keeps exactly that many accumulators per channel.</summary>
    private interface IVectors { static abstract int Count { get; } }
    private struct N1 : IVectors { public static int Count => 1; }
    private struct N2 : IVectors { public static int Count => 2; }
    private struct N3 : IVectors { public static int Count => 3; }
    private struct N4 : IVectors { public static int Count => 4; }
    private struct N5 : IVectors { public static int Count => 5; }
    private struct N6 : IVectors { public static int Count => 6; }

    // The kernels are unrolled by hand: each accumulator is its own local so the JIT keeps all of them
    // in registers across the channel loop; branches on TV.Count are folded per instantiation. Weight
    // w_c[k] is output channel c's weight of the current input channel and tap t, k = t step: packed
    // weights (PackWeights) have the 4 channels side by side (w_c = w + c, step 4, one sequential stream),
    // the tensor's own rows are Cin kh kw apart (step 1).

    /// <summary>
    /// 4 channels x TV.Count x 16 positions over <paramref name="cin"/> input channels and all taps (AVX-512:
    /// 24 accumulators + 4 broadcasts + 1 input). Starts from the partial sums in <paramref name="tile"/> when
    /// <paramref name="accumulate"/>, else from zero; leaves the sums there.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile512<TV>(float* x, long planeStride, int cin, int* offsets, int taps,
        float* w0, float* w1, float* w2, float* w3, int step, float* tile, int tileStride, bool accumulate) where TV : struct, IVectors
    {
        float* t0 = tile, t1 = tile + tileStride, t2 = tile + 2 * tileStride, t3 = tile + 3 * tileStride;
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        if (accumulate)
        {
            a00 = Vector512.Load(t0); a10 = Vector512.Load(t1); a20 = Vector512.Load(t2); a30 = Vector512.Load(t3);
            if (TV.Count > 1) { a01 = Vector512.Load(t0 + 16); a11 = Vector512.Load(t1 + 16); a21 = Vector512.Load(t2 + 16); a31 = Vector512.Load(t3 + 16); }
            if (TV.Count > 2) { a02 = Vector512.Load(t0 + 32); a12 = Vector512.Load(t1 + 32); a22 = Vector512.Load(t2 + 32); a32 = Vector512.Load(t3 + 32); }
            if (TV.Count > 3) { a03 = Vector512.Load(t0 + 48); a13 = Vector512.Load(t1 + 48); a23 = Vector512.Load(t2 + 48); a33 = Vector512.Load(t3 + 48); }
            if (TV.Count > 4) { a04 = Vector512.Load(t0 + 64); a14 = Vector512.Load(t1 + 64); a24 = Vector512.Load(t2 + 64); a34 = Vector512.Load(t3 + 64); }
            if (TV.Count > 5) { a05 = Vector512.Load(t0 + 80); a15 = Vector512.Load(t1 + 80); a25 = Vector512.Load(t2 + 80); a35 = Vector512.Load(t3 + 80); }
        }
        for (int ci = 0; ci < cin; ci++)
        {
            for (int t = 0, k = 0; t < taps; t++, k += step)
            {
                float* p = x + offsets[t];
                var b0 = Vector512.Create(w0[k]); var b1 = Vector512.Create(w1[k]);
                var b2 = Vector512.Create(w2[k]); var b3 = Vector512.Create(w3[k]);
                var v = Vector512.Load(p);
                a00 = Vector512.FusedMultiplyAdd(v, b0, a00); a10 = Vector512.FusedMultiplyAdd(v, b1, a10);
                a20 = Vector512.FusedMultiplyAdd(v, b2, a20); a30 = Vector512.FusedMultiplyAdd(v, b3, a30);
                if (TV.Count > 1)
                {
                    v = Vector512.Load(p + 16);
                    a01 = Vector512.FusedMultiplyAdd(v, b0, a01); a11 = Vector512.FusedMultiplyAdd(v, b1, a11);
                    a21 = Vector512.FusedMultiplyAdd(v, b2, a21); a31 = Vector512.FusedMultiplyAdd(v, b3, a31);
                }
                if (TV.Count > 2)
                {
                    v = Vector512.Load(p + 32);
                    a02 = Vector512.FusedMultiplyAdd(v, b0, a02); a12 = Vector512.FusedMultiplyAdd(v, b1, a12);
                    a22 = Vector512.FusedMultiplyAdd(v, b2, a22); a32 = Vector512.FusedMultiplyAdd(v, b3, a32);
                }
                if (TV.Count > 3)
                {
                    v = Vector512.Load(p + 48);
                    a03 = Vector512.FusedMultiplyAdd(v, b0, a03); a13 = Vector512.FusedMultiplyAdd(v, b1, a13);
                    a23 = Vector512.FusedMultiplyAdd(v, b2, a23); a33 = Vector512.FusedMultiplyAdd(v, b3, a33);
                }
                if (TV.Count > 4)
                {
                    v = Vector512.Load(p + 64);
                    a04 = Vector512.FusedMultiplyAdd(v, b0, a04); a14 = Vector512.FusedMultiplyAdd(v, b1, a14);
                    a24 = Vector512.FusedMultiplyAdd(v, b2, a24); a34 = Vector512.FusedMultiplyAdd(v, b3, a34);
                }
                if (TV.Count > 5)
                {
                    v = Vector512.Load(p + 80);
                    a05 = Vector512.FusedMultiplyAdd(v, b0, a05); a15 = Vector512.FusedMultiplyAdd(v, b1, a15);
                    a25 = Vector512.FusedMultiplyAdd(v, b2, a25); a35 = Vector512.FusedMultiplyAdd(v, b3, a35);
                }
            }
            x += planeStride;
            int next = taps * step;
            w0 += next; w1 += next; w2 += next; w3 += next;
        }
        a00.Store(t0); a10.Store(t1); a20.Store(t2); a30.Store(t3);
        if (TV.Count > 1) { a01.Store(t0 + 16); a11.Store(t1 + 16); a21.Store(t2 + 16); a31.Store(t3 + 16); }
        if (TV.Count > 2) { a02.Store(t0 + 32); a12.Store(t1 + 32); a22.Store(t2 + 32); a32.Store(t3 + 32); }
        if (TV.Count > 3) { a03.Store(t0 + 48); a13.Store(t1 + 48); a23.Store(t2 + 48); a33.Store(t3 + 48); }
        if (TV.Count > 4) { a04.Store(t0 + 64); a14.Store(t1 + 64); a24.Store(t2 + 64); a34.Store(t3 + 64); }
        if (TV.Count > 5) { a05.Store(t0 + 80); a15.Store(t1 + 80); a25.Store(t2 + 80); a35.Store(t3 + 80); }
    }

    /// <summary>4 channels x TV.Count x 8 positions (AVX2: 12 accumulators + 3 inputs + 1 broadcast fill the 16 registers); as <see cref="Tile512{TV}"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256<TV>(float* x, long planeStride, int cin, int* offsets, int taps,
        float* w0, float* w1, float* w2, float* w3, int step, float* tile, int tileStride, bool accumulate) where TV : struct, IVectors
    {
        float* t0 = tile, t1 = tile + tileStride, t2 = tile + 2 * tileStride, t3 = tile + 3 * tileStride;
        Vector256<float> a00 = default, a01 = default, a02 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default;
        if (accumulate)
        {
            a00 = Vector256.Load(t0); a10 = Vector256.Load(t1); a20 = Vector256.Load(t2); a30 = Vector256.Load(t3);
            if (TV.Count > 1) { a01 = Vector256.Load(t0 + 8); a11 = Vector256.Load(t1 + 8); a21 = Vector256.Load(t2 + 8); a31 = Vector256.Load(t3 + 8); }
            if (TV.Count > 2) { a02 = Vector256.Load(t0 + 16); a12 = Vector256.Load(t1 + 16); a22 = Vector256.Load(t2 + 16); a32 = Vector256.Load(t3 + 16); }
        }
        for (int ci = 0; ci < cin; ci++)
        {
            for (int t = 0, k = 0; t < taps; t++, k += step)
            {
                float* p = x + offsets[t];
                var v0 = Vector256.Load(p);
                var v1 = TV.Count > 1 ? Vector256.Load(p + 8) : default;
                var v2 = TV.Count > 2 ? Vector256.Load(p + 16) : default;
                var b = Vector256.Create(w0[k]);
                a00 = Vector256.FusedMultiplyAdd(v0, b, a00);
                if (TV.Count > 1) a01 = Vector256.FusedMultiplyAdd(v1, b, a01);
                if (TV.Count > 2) a02 = Vector256.FusedMultiplyAdd(v2, b, a02);
                b = Vector256.Create(w1[k]);
                a10 = Vector256.FusedMultiplyAdd(v0, b, a10);
                if (TV.Count > 1) a11 = Vector256.FusedMultiplyAdd(v1, b, a11);
                if (TV.Count > 2) a12 = Vector256.FusedMultiplyAdd(v2, b, a12);
                b = Vector256.Create(w2[k]);
                a20 = Vector256.FusedMultiplyAdd(v0, b, a20);
                if (TV.Count > 1) a21 = Vector256.FusedMultiplyAdd(v1, b, a21);
                if (TV.Count > 2) a22 = Vector256.FusedMultiplyAdd(v2, b, a22);
                b = Vector256.Create(w3[k]);
                a30 = Vector256.FusedMultiplyAdd(v0, b, a30);
                if (TV.Count > 1) a31 = Vector256.FusedMultiplyAdd(v1, b, a31);
                if (TV.Count > 2) a32 = Vector256.FusedMultiplyAdd(v2, b, a32);
            }
            x += planeStride;
            int next = taps * step;
            w0 += next; w1 += next; w2 += next; w3 += next;
        }
        a00.Store(t0); a10.Store(t1); a20.Store(t2); a30.Store(t3);
        if (TV.Count > 1) { a01.Store(t0 + 8); a11.Store(t1 + 8); a21.Store(t2 + 8); a31.Store(t3 + 8); }
        if (TV.Count > 2) { a02.Store(t0 + 16); a12.Store(t1 + 16); a22.Store(t2 + 16); a32.Store(t3 + 16); }
    }
}
