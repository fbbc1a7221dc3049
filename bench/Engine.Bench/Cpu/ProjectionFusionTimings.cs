using System.Diagnostics;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--projection-fusion [--threads N] [--rounds R]</c>: the attention projections of the SD 1.5 UNet (batch 2, F16 weights)
/// as separate Linear calls (q, k, v of self-attention; k, v of cross-attention over the 77-token text) against one call over
/// the concatenated weight, alternated in one process for R rounds; each measurement repeats its op for at least 0.2 s and
/// reports process CPU time per call. The table gives medians (and ranges) in GFLOP/s.
/// </summary>
internal static class ProjectionFusionTimings
{
    /// <summary>Runs the harness; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        int threads = Option(args, "--threads", Environment.ProcessorCount), rounds = Option(args, "--rounds", 5);
        using var device = new CpuDevice(threads);
        Console.WriteLine($"# attention projections, separate vs fused, {device.Name}, {rounds} rounds, load {Load()}");
        Console.WriteLine("| case | separate GFLOP/s (range) | fused GFLOP/s (range) | fused / separate |");
        Console.WriteLine("|---|---|---|---|");
        (int Rows, int In, int Out, int Parts)[] cases =
        [
            (8192, 320, 320, 3), (2048, 640, 640, 3), (512, 1280, 1280, 3), (128, 1280, 1280, 3),
            (154, 768, 320, 2), (154, 768, 640, 2), (154, 768, 1280, 2),
        ];
        foreach (var (rows, inF, outF, parts) in cases)
        {
            var rng = new Random(rows + inF);
            float[] R(int n, float s) { var d = new float[n]; for (int i = 0; i < n; i++) d[i] = (float)(rng.NextDouble() * 2 - 1) * s; return d; }
            using var x = device.Upload(R(rows * inF, 1f), rows, inF);
            using var w32 = device.Upload(R(parts * outF * inF, 0.05f), parts * outF, inF);
            using var w = device.Convert(w32, DType.F16);
            using var y = device.Allocate(rows, parts * outF);
            var ys = Enumerable.Range(0, parts).Select(_ => device.Allocate(rows, outF)).ToArray();
            var ws = Enumerable.Range(0, parts).Select(p => w.Slice(p * outF, outF)).ToArray();
            Action separate = () => { for (int p = 0; p < parts; p++) device.Linear(x, ws[p], null, ys[p]); };
            Action fused = () => device.Linear(x, w, null, y);
            separate(); fused();
            var s = new List<double>(); var f = new List<double>();
            for (int r = 0; r < rounds; r++) { s.Add(Time(separate)); f.Add(Time(fused)); }
            double flops = 2.0 * rows * inF * outF * parts;
            string G(List<double> t) => $"{flops / Median(t) / 1e9:F1} ({flops / t.Max() / 1e9:F1}-{flops / t.Min() / 1e9:F1})";
            Console.WriteLine($"| {parts} x {rows}x{inF}->{outF} | {G(s)} | {G(f)} | {Median(s) / Median(f):F2} |");
            foreach (var t in ys) t.Dispose();
        }
        Console.WriteLine($"load after: {Load()}");
        return 0;
    }

    private static double Time(Action op)
    {
        int calls = 0;
        double cpu0 = ProcessCpu.Seconds();
        var sw = Stopwatch.StartNew();
        do { op(); calls++; } while (sw.Elapsed.TotalSeconds < 0.2);
        return (ProcessCpu.Seconds() - cpu0) / calls;
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
