using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu;

// The register-blocked micro-kernels of Gemm (MR x NR tile of C over one KC slice) and their epilogue.
internal static unsafe partial class Gemm
{
    /// <summary>How the micro-kernel writes its tile: overwrite or accumulate into C, plus the bias on the last K slice.</summary>
    private readonly struct Epilogue(bool accumulate, float* colBias, float* rowBias)
    {
        private readonly bool _accumulate = accumulate;
        private readonly float* _colBias = colBias, _rowBias = rowBias;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void StoreRow(float* dst, int row, Vector512<float> v0, Vector512<float> v1)
        {
            if (_accumulate) { v0 += Vector512.Load(dst); v1 += Vector512.Load(dst + 16); }
            if (_colBias != null) { v0 += Vector512.Load(_colBias); v1 += Vector512.Load(_colBias + 16); }
            if (_rowBias != null) { var r = Vector512.Create(_rowBias[row]); v0 += r; v1 += r; }
            v0.Store(dst); v1.Store(dst + 16);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void StoreRow(float* dst, int row, Vector256<float> v0, Vector256<float> v1)
        {
            if (_accumulate) { v0 += Vector256.Load(dst); v1 += Vector256.Load(dst + 8); }
            if (_colBias != null) { v0 += Vector256.Load(_colBias); v1 += Vector256.Load(_colBias + 8); }
            if (_rowBias != null) { var r = Vector256.Create(_rowBias[row]); v0 += r; v1 += r; }
            v0.Store(dst); v1.Store(dst + 8);
        }

        /// <summary>
        /// Edge tiles: the kernel's full tile went to a stack buffer; copy its valid mr x nr corner, adding in
        /// <see cref="StoreRow(float*, int, Vector512{float}, Vector512{float})"/>'s order (C, then the column bias,
        /// then the row bias), so an element rounds alike in a full or an edge tile, wherever M or N puts it.
        /// </summary>
        public void StorePartial(float* c, int ldc, float* tile, int tileStride, int mr, int nr)
        {
            for (int r = 0; r < mr; r++)
            {
                float* dst = c + (long)r * ldc;
                for (int j = 0; j < nr; j++)
                {
                    float v = tile[r * tileStride + j];
                    if (_accumulate) v += dst[j];
                    if (_colBias != null) v += _colBias[j];
                    if (_rowBias != null) v += _rowBias[r];
                    dst[j] = v;
                }
            }
        }
    }

    // The micro-kernels below are unrolled by hand: each accumulator must be its own local so the JIT
    // keeps it in a register for the whole depth loop.

    private static void Kernel512(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, in Epilogue e)
    {
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadAligned(b); var b1 = Vector512.LoadAligned(b + 16);
            var a0 = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(a0, b0, c00); c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(a1, b0, c10); c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(a2, b0, c20); c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(a3, b0, c30); c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(a4, b0, c40); c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(a5, b0, c50); c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
            var a6 = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(a6, b0, c60); c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
            var a7 = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(a7, b0, c70); c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
            a += 8; b += 32;
        }
        Store512(c, ldc, mr, nr, e, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
    }

    /// <summary>
    /// <see cref="Kernel512"/> reading A straight from its rows (float32, contiguous in depth, <paramref name="lda"/>
    /// apart; alpha 1) instead of a packed panel: each depth broadcasts one element of each of the 8 rows, so a Linear
    /// layer's activations need no copy. Rows past <paramref name="mr"/> re-read row 0 (in bounds; their results are dropped).
    /// </summary>
    private static void Kernel512Rows(int kc, float* a, long lda, float* b, float* c, int ldc, int mr, int nr, in Epilogue e)
    {
        float* a0 = a, a1 = mr > 1 ? a + lda : a, a2 = mr > 2 ? a + 2 * lda : a, a3 = mr > 3 ? a + 3 * lda : a;
        float* a4 = mr > 4 ? a + 4 * lda : a, a5 = mr > 5 ? a + 5 * lda : a, a6 = mr > 6 ? a + 6 * lda : a, a7 = mr > 7 ? a + 7 * lda : a;
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.LoadAligned(b); var b1 = Vector512.LoadAligned(b + 16);
            var x0 = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(x0, b0, c00); c01 = Vector512.FusedMultiplyAdd(x0, b1, c01);
            var x1 = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(x1, b0, c10); c11 = Vector512.FusedMultiplyAdd(x1, b1, c11);
            var x2 = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(x2, b0, c20); c21 = Vector512.FusedMultiplyAdd(x2, b1, c21);
            var x3 = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(x3, b0, c30); c31 = Vector512.FusedMultiplyAdd(x3, b1, c31);
            var x4 = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(x4, b0, c40); c41 = Vector512.FusedMultiplyAdd(x4, b1, c41);
            var x5 = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(x5, b0, c50); c51 = Vector512.FusedMultiplyAdd(x5, b1, c51);
            var x6 = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(x6, b0, c60); c61 = Vector512.FusedMultiplyAdd(x6, b1, c61);
            var x7 = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(x7, b0, c70); c71 = Vector512.FusedMultiplyAdd(x7, b1, c71);
            b += 32;
        }
        Store512(c, ldc, mr, nr, e, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, int ldc, int mr, int nr, in Epilogue e,
        Vector512<float> c00, Vector512<float> c01, Vector512<float> c10, Vector512<float> c11,
        Vector512<float> c20, Vector512<float> c21, Vector512<float> c30, Vector512<float> c31,
        Vector512<float> c40, Vector512<float> c41, Vector512<float> c50, Vector512<float> c51,
        Vector512<float> c60, Vector512<float> c61, Vector512<float> c70, Vector512<float> c71)
    {
        if (mr == 8 && nr == 32)
        {
            e.StoreRow(c + 0 * ldc, 0, c00, c01);
            e.StoreRow(c + 1 * ldc, 1, c10, c11);
            e.StoreRow(c + 2 * ldc, 2, c20, c21);
            e.StoreRow(c + 3 * ldc, 3, c30, c31);
            e.StoreRow(c + 4 * ldc, 4, c40, c41);
            e.StoreRow(c + 5 * ldc, 5, c50, c51);
            e.StoreRow(c + 6 * ldc, 6, c60, c61);
            e.StoreRow(c + 7 * ldc, 7, c70, c71);
        }
        else
        {
            float* tile = stackalloc float[256];
            c00.Store(tile + 0); c01.Store(tile + 16);
            c10.Store(tile + 32); c11.Store(tile + 48);
            c20.Store(tile + 64); c21.Store(tile + 80);
            c30.Store(tile + 96); c31.Store(tile + 112);
            c40.Store(tile + 128); c41.Store(tile + 144);
            c50.Store(tile + 160); c51.Store(tile + 176);
            c60.Store(tile + 192); c61.Store(tile + 208);
            c70.Store(tile + 224); c71.Store(tile + 240);
            e.StorePartial(c, ldc, tile, 32, mr, nr);
        }
    }

    private static void Kernel256(int kc, float* a, float* b, float* c, int ldc, int mr, int nr, in Epilogue e)
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.LoadAligned(b); var b1 = Vector256.LoadAligned(b + 8);
            var a0 = Vector256.Create(a[0]); c00 = Vector256.FusedMultiplyAdd(a0, b0, c00); c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector256.Create(a[1]); c10 = Vector256.FusedMultiplyAdd(a1, b0, c10); c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector256.Create(a[2]); c20 = Vector256.FusedMultiplyAdd(a2, b0, c20); c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector256.Create(a[3]); c30 = Vector256.FusedMultiplyAdd(a3, b0, c30); c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector256.Create(a[4]); c40 = Vector256.FusedMultiplyAdd(a4, b0, c40); c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector256.Create(a[5]); c50 = Vector256.FusedMultiplyAdd(a5, b0, c50); c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
            a += 6; b += 16;
        }
        if (mr == 6 && nr == 16)
        {
            e.StoreRow(c + 0 * ldc, 0, c00, c01);
            e.StoreRow(c + 1 * ldc, 1, c10, c11);
            e.StoreRow(c + 2 * ldc, 2, c20, c21);
            e.StoreRow(c + 3 * ldc, 3, c30, c31);
            e.StoreRow(c + 4 * ldc, 4, c40, c41);
            e.StoreRow(c + 5 * ldc, 5, c50, c51);
        }
        else
        {
            float* tile = stackalloc float[96];
            c00.Store(tile + 0); c01.Store(tile + 8);
            c10.Store(tile + 16); c11.Store(tile + 24);
            c20.Store(tile + 32); c21.Store(tile + 40);
            c30.Store(tile + 48); c31.Store(tile + 56);
            c40.Store(tile + 64); c41.Store(tile + 72);
            c50.Store(tile + 80); c51.Store(tile + 88);
            e.StorePartial(c, ldc, tile, 16, mr, nr);
        }
    }
}
