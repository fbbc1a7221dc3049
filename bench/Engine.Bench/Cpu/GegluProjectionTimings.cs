using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--geglu-projection [--threads N]</c>: the GEGLU feed-forward projections of SD 1.5 (f16 weights) as the CPU
/// device's fused <see cref="Device.LinearGeglu"/> against the separate Linear into a pooled temporary then Geglu,
/// alternated in one process (9 blocks of 4 calls each, order flipped every block, after a warm-up), timed by the
/// process's CPU time (getrusage) and wall time; prints medians and ranges and the fused / separate ratio.
/// </summary>
public static class GegluProjectionTimings
{

    /// <summary>Runs the comparison; returns the exit code.</summary>
    public static int Run(string[] args)
    {
        int t = Array.IndexOf(args, "--threads");
        int threads = t >= 0 && t + 1 < args.Length ? int.Parse(args[t + 1], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        string load = File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        Console.WriteLine($"GEGLU projections, {threads} thread(s), load average before: {load}");
        using var device = new CpuDevice(threads);
        foreach (var (rows, k, d) in new[] { (8192, 320, 1280), (2048, 640, 2560) })
        {
            var rng = new Random(1);
            float[] Random(int n, float scale) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale; return a; }
            using var x = device.Upload(Random(rows * k, 2f), rows, k);
            using var wide = device.Upload(Random(2 * d * k, 0.1f), 2 * d, k);
            using var w = device.Allocate(DType.F16, 2 * d, k);
            device.Copy(wide, w);
            using var b = device.Upload(Random(2 * d, 0.1f), 2 * d);
            using var y = device.Allocate(rows, d);
            Action separate = () => { using var h = device.Allocate(rows, 2 * d); device.Linear(x, w, b, h); device.Geglu(h, y); };
            Action fused = () => device.LinearGeglu(x, w, b, y);
            for (int i = 0; i < 5; i++) { separate(); fused(); }
            List<double> sc = [], fc = [], sw = [], fw = [];
            for (int r = 0; r < 9; r++)
                foreach (var (op, cpu, wall) in r % 2 == 0 ? new[] { (separate, sc, sw), (fused, fc, fw) } : new[] { (fused, fc, fw), (separate, sc, sw) })
                {
                    double c0 = ProcessCpu.Seconds() * 1e3;
                    long t0 = Stopwatch.GetTimestamp();
                    for (int i = 0; i < 4; i++) op();
                    wall.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds / 4);
                    cpu.Add((ProcessCpu.Seconds() * 1e3 - c0) / 4);
                }
            static string F(List<double> v) { v.Sort(); return string.Create(CultureInfo.InvariantCulture, $"{v[v.Count / 2]:F2} [{v[0]:F2}-{v[^1]:F2}]"); }
            double ratio = fc.Order().ElementAt(4) / sc.Order().ElementAt(4);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{rows}x{k}->{2 * d} wf16: CPU ms separate {F(sc)} fused {F(fc)} fused/separate {ratio:F3}; wall ms separate {F(sw)} fused {F(fw)}"));
        }
        return 0;
    }
}
