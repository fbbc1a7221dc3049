using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--kernel-probe</c>: splits one Linear-layout product (2048 x 640 x 640, weight transposed, single thread) into
/// its parts: packing all of A, packing all of B, the whole <see cref="Gemm.Run"/>, and the micro-kernel alone on the
/// packed operands in 64 x 256 blocks (<see cref="Gemm.RunPacked"/>); three rounds, wall time per call.
/// </summary>
internal static unsafe class KernelProbe
{
    /// <summary>Runs the probe; returns the process exit code.</summary>
    public static int Run()
    {
        int m = 2048, n = 640, k = 640;
        float* a = (float*)NativeMemory.AlignedAlloc((nuint)(m * k * 4), 64), b = (float*)NativeMemory.AlignedAlloc((nuint)(n * k * 4), 64), c = (float*)NativeMemory.AlignedAlloc((nuint)(m * n * 4), 64);
        for (int i = 0; i < m * k; i++) a[i] = 0.001f * (i % 97);
        for (int i = 0; i < n * k; i++) b[i] = 0.001f * (i % 89);
        var g = new GemmProblem { M = m, N = n, K = k, A = (nint)a, RsA = k, CsA = 1, B = (nint)b, RsB = 1, CsB = k, C = (nint)c, Ldc = n, Alpha = 1f };
        float* pa = (float*)NativeMemory.AlignedAlloc((nuint)(Gemm.PackedASize(g) * 4), 64), pb = (float*)NativeMemory.AlignedAlloc((nuint)(Gemm.PackedBSize(g) * 4), 64);
        double T(Action f) { f(); var sw = Stopwatch.StartNew(); int r = 0; do { f(); r++; } while (sw.Elapsed.TotalSeconds < 0.3); return sw.Elapsed.TotalSeconds / r; }
        double flops = 2.0 * m * n * k;
        for (int round = 0; round < 3; round++)
        {
            double packA = T(() => Gemm.PackAllA(g, pa)), packB = T(() => Gemm.PackAllB(g, pb));
            double all = T(() => Gemm.Run(g, null));
            // The micro-kernel alone on the packed operands, block by block as MacroTile walks them.
            double kern = T(() =>
            {
                for (int i0 = 0; i0 < m; i0 += 64)
                    for (int j0 = 0; j0 < n; j0 += 256)
                        Gemm.RunPacked(Math.Min(64, m - i0), Math.Min(256, n - j0), k, pa + (long)i0 * k, (long)Gemm.PanelRows * k, pb + (long)j0 * k, (long)Gemm.PanelCols * k, c + (long)i0 * n + j0, n, false);
            });
            Console.WriteLine($"packA {packA * 1e3:F2} ms packB {packB * 1e3:F2} ms run {all * 1e3:F2} ms ({flops / all / 1e9:F1} GF) kernel-only {kern * 1e3:F2} ms ({flops / kern / 1e9:F1} GF)");
        }
        foreach (var p in new[] { a, b, c, pa, pb }) NativeMemory.AlignedFree(p);
        return 0;
    }
}
