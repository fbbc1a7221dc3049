using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

internal static unsafe class KernelProbe
{
    public static int Run(string[] args)
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
            // kernel only, on packed data, block by block like MacroTile: 64 rows x 256 cols
            double kern = T(() =>
            {
                for (int i0 = 0; i0 < m; i0 += 64)
                    for (int j0 = 0; j0 < n; j0 += 256)
                        Gemm.RunPacked(Math.Min(64, m - i0), Math.Min(256, n - j0), k, pa + (long)i0 * k, (long)Gemm.PanelRows * k, pb + (long)j0 * k, (long)Gemm.PanelCols * k, c + (long)i0 * n + j0, n, false);
            });
            Console.WriteLine($"packA {packA * 1e3:F2} ms packB {packB * 1e3:F2} ms run {all * 1e3:F2} ms ({flops / all / 1e9:F1} GF) kernel-only {kern * 1e3:F2} ms ({flops / kern / 1e9:F1} GF)");
        }
        return 0;
    }
}
