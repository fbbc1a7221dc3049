using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// The data-movement kernels of the CPU device's layout ops, on raw pointers: a blocked matrix transpose
/// with an in-register 8x8 AVX transpose, and the nearest 2x upsampling of one row by lane duplication.
/// They run inside parallel jobs and are compiled fully optimised on first use
/// (<see cref="MethodImplOptions.AggressiveOptimization"/>): a single forward pass calls each only a
/// few dozen times, so tier-0 code would otherwise run a large share of its calls.
/// </summary>
internal static unsafe class LayoutKernels
{
    /// <summary>Rows of the source a transpose job covers: 64 rows x 8 columns are 64 cache-line halves, well inside L1.</summary>
    internal const int TransposeStrip = 64;

    /// <summary>
    /// Transposes rows [row0, row1) of the m x n matrix <paramref name="x"/> into columns of the n x m
    /// matrix <paramref name="y"/>: 8x8 blocks through registers (AVX), scalar edges.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void TransposeRows(float* x, float* y, int m, int n, int row0, int row1)
    {
        int i = row0;
        if (Avx.IsSupported)
        {
            int n8 = n & ~7;
            for (; i + 8 <= row1; i += 8)
            {
                for (int j = 0; j < n8; j += 8) Transpose8x8.Run(x + (long)i * n + j, n, y + (long)j * m + i, m);
                for (int j = n8; j < n; j++)
                    for (int r = i; r < i + 8; r++) y[(long)j * m + r] = x[(long)r * n + j];
            }
        }
        for (; i < row1; i++)
            for (int j = 0; j < n; j++) y[(long)j * m + i] = x[(long)i * n + j];
    }

    /// <summary>
    /// Nearest 2x upsampling of <paramref name="planes"/> consecutive h x w planes: each source row is read
    /// once, every lane duplicated in registers, and the doubled row stored to both output rows. With
    /// <paramref name="streaming"/> (outputs far larger than the caches), rows whose start is 64-byte aligned
    /// are written with non-temporal stores, which skip reading each output line before writing it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void UpsampleNearest2x(float* x, float* y, int planes, int h, int w, bool streaming)
    {
        if (streaming && Vector512.IsHardwareAccelerated && w % 8 == 0 && ((nint)y & 63) == 0)
        {
            UpsampleNearest2xStreaming(x, y, planes, h, w);
            return;
        }
        long rows = (long)planes * h;
        int ow = 2 * w;
        for (long r = 0; r < rows; r++)
        {
            float* src = x + r * w, even = y + 2 * r * ow, odd = even + ow;
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                var lo = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
                var hi = Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
                for (; i + 16 <= w; i += 16)
                {
                    var v = Vector512.Load(src + i);
                    var a = Vector512.Shuffle(v, lo); var b = Vector512.Shuffle(v, hi);
                    a.Store(even + 2 * i); b.Store(even + 2 * i + 16);
                    a.Store(odd + 2 * i); b.Store(odd + 2 * i + 16);
                }
            }
            if (Vector256.IsHardwareAccelerated)
            {
                var lo = Vector256.Create(0, 0, 1, 1, 2, 2, 3, 3);
                var hi = Vector256.Create(4, 4, 5, 5, 6, 6, 7, 7);
                for (; i + 8 <= w; i += 8)
                {
                    var v = Vector256.Load(src + i);
                    var a = Vector256.Shuffle(v, lo); var b = Vector256.Shuffle(v, hi);
                    a.Store(even + 2 * i); b.Store(even + 2 * i + 8);
                    a.Store(odd + 2 * i); b.Store(odd + 2 * i + 8);
                }
            }
            for (; i < w; i++)
            {
                float v = src[i];
                even[2 * i] = v; even[2 * i + 1] = v; odd[2 * i] = v; odd[2 * i + 1] = v;
            }
        }
    }

    /// <summary>
    /// <see cref="UpsampleNearest2x"/> with non-temporal stores: y is 64-byte aligned and w a multiple of 8,
    /// so every output row starts on a cache line. Ends with a store fence so the writes are visible to
    /// whichever thread reads them next.
    /// </summary>
    private static void UpsampleNearest2xStreaming(float* x, float* y, int planes, int h, int w)
    {
        long rows = (long)planes * h;
        int ow = 2 * w, w16 = w & ~15;
        var lo = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
        var hi = Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
        for (long r = 0; r < rows; r++)
        {
            float* src = x + r * w, even = y + 2 * r * ow, odd = even + ow;
            for (int i = 0; i < w16; i += 16)
            {
                var v = Vector512.Load(src + i);
                var a = Vector512.Shuffle(v, lo); var b = Vector512.Shuffle(v, hi);
                a.StoreAlignedNonTemporal(even + 2 * i); b.StoreAlignedNonTemporal(even + 2 * i + 16);
                a.StoreAlignedNonTemporal(odd + 2 * i); b.StoreAlignedNonTemporal(odd + 2 * i + 16);
            }
            for (int i = w16; i < w; i++)
            {
                float v = src[i];
                even[2 * i] = v; even[2 * i + 1] = v; odd[2 * i] = v; odd[2 * i + 1] = v;
            }
        }
        if (Sse.IsSupported) Sse.StoreFence();
    }
}
