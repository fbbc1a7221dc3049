using System.Diagnostics;
using System.Runtime.InteropServices;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--gemm-breakdown [--reps R]</c>: the UNet's Linear shapes (row-major activations times an F16 weight [out, in], as
/// the UNet step runs them) split into their parts, each timed as the fastest of R calls (default 40; the minimum of
/// short calls is what an undisturbed core does, which a loaded shared machine otherwise hides): packing all of A,
/// packing (widening) all of B, the whole <see cref="Gemm.Run"/> on one thread and on two, alternated call by call.
/// </summary>
internal static unsafe class GemmBreakdown
{
    /// <summary>Runs the breakdown; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        int i = Array.IndexOf(args, "--reps");
        int reps = i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : 40;
        (int M, int K, int N)[] shapes =
        [
            (8192, 320, 320), (8192, 1280, 320), (2048, 640, 640), (512, 1280, 1280), (512, 5120, 1280),
            (154, 768, 320), (154, 768, 640), (154, 768, 1280), (128, 1280, 1280),
        ];
        var two = new ParallelOptions { MaxDegreeOfParallelism = 2 };
        Console.WriteLine($"# GEMM breakdown, F16 weights, fastest of {reps} calls (ms; GFLOP/s of the whole product), load {Load()}");
        Console.WriteLine("| shape | pack A | pack B (f16) | 1 thread | 2 threads wall |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var (m, k, n) in shapes)
        {
            float* a = Alloc((long)m * k), c = Alloc((long)m * n);
            Half* b = (Half*)NativeMemory.AlignedAlloc((nuint)((long)n * k * 2), 64);
            var rng = new Random(m + k + n);
            for (long x = 0; x < (long)m * k; x++) a[x] = (float)rng.NextDouble() - 0.5f;
            for (long x = 0; x < (long)n * k; x++) b[x] = (Half)((float)rng.NextDouble() * 0.1f - 0.05f);
            var g = new GemmProblem { M = m, N = n, K = k, A = (nint)a, RsA = k, CsA = 1, B = (nint)b, TypeB = DType.F16, RsB = 1, CsB = k, C = (nint)c, Ldc = n, Alpha = 1f };
            float* pa = Alloc(Gemm.PackedASize(g)), pb = Alloc(Gemm.PackedBSize(g));
            Action[] parts =
            [
                () => Gemm.PackAllA(g, pa), () => Gemm.PackAllB(g, pb),
                () => Gemm.Run(g, null), () => Gemm.Run(g, two),
            ];
            var best = Enumerable.Repeat(double.MaxValue, parts.Length).ToArray();
            foreach (var p in parts) p();
            for (int r = 0; r < reps; r++)
                for (int p = 0; p < parts.Length; p++)
                {
                    long t0 = Stopwatch.GetTimestamp();
                    parts[p]();
                    best[p] = Math.Min(best[p], Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
            double flops = 2.0 * m * n * k;
            string Ms(int p) => p < 2 ? $"{best[p]:F2}" : $"{best[p]:F2} ({flops / best[p] / 1e6:F0})";
            Console.WriteLine($"| {m}x{k}->{n} | {Ms(0)} | {Ms(1)} | {Ms(2)} | {Ms(3)} |");
            foreach (var p in new nint[] { (nint)a, (nint)b, (nint)c, (nint)pa, (nint)pb }) NativeMemory.AlignedFree((void*)p);
        }
        Console.WriteLine($"load after: {Load()}");
        return 0;
    }

    private static float* Alloc(long count) => (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);

    private static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
