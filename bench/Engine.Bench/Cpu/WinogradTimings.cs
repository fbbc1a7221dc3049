using System.Diagnostics;
using System.Globalization;
using System.Text;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>Engine.Bench --winograd [--threads N] [--rounds R] [--shapes LIST] [--out FILE]</c>: 3x3 stride-1 pad-1
/// convolutions with bias at the SD 1.5 UNet and VAE shapes, timed with the direct kernel, Winograd F(2x2, 3x3)
/// and an in-process ONNX Runtime Conv node (same weights; its intra-op threads set to N) alternating call by call
/// in each round, so load that drifts hits all three alike. Per call it records the process CPU time and the
/// wall time; the table gives medians over the rounds (after one warm-up call each), the effective GFLOP/s
/// (2 N Cin Cout 9 H W flops, the direct arithmetic) by CPU time, and the ratios. A Stopwatch harness rather than
/// BenchmarkDotNet so that a full sweep at 1 and 2 threads fits a few minutes of a shared lock.
/// </summary>
public static class WinogradTimings
{
    /// <summary>"cin-cout@size xbatch", the profile's shapes (VAE at batch 1, UNet at batch 2).</summary>
    private static readonly string[] DefaultShapes =
    [
        "512-512@64x1", "512-512@128x1", "256-256@256x1", "512-256@256x1", "256-256@512x1", "128-128@512x1", "256-128@512x1",
        "320-320@64x2", "640-640@32x2", "1280-1280@16x2", "1280-1280@8x2", "640-320@64x2", "1920-640@32x2",
    ];

    public static int Run(string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int threads = int.Parse(Arg("--threads") ?? "2", CultureInfo.InvariantCulture);
        int rounds = int.Parse(Arg("--rounds") ?? "3", CultureInfo.InvariantCulture);
        var shapes = Arg("--shapes")?.Split(',') ?? DefaultShapes;
        var text = new StringBuilder();
        text.AppendLine(CultureInfo.InvariantCulture, $"3x3 convolutions, {threads} thread(s), {rounds} rounds, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average {Load()}");
        text.AppendLine();
        text.AppendLine("| shape | direct ms CPU | Winograd ms CPU | ORT ms CPU | direct GFLOP/s | Winograd GFLOP/s | ORT GFLOP/s | Winograd / direct speed | Winograd / ORT speed | Winograd / ORT wall |");
        text.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.Write(text);
        foreach (var shape in shapes)
        {
            var row = Measure(shape, threads, rounds);
            text.AppendLine(row);
            Console.WriteLine(row);
        }
        text.AppendLine();
        text.AppendLine(CultureInfo.InvariantCulture, $"Load average after: {Load()}.");
        string? outFile = Arg("--out");
        if (outFile is not null) File.WriteAllText(outFile, text.ToString());
        return 0;
    }

    private static string Measure(string shape, int threads, int rounds)
    {
        var parts = shape.Split('-', '@', 'x');
        int cin = int.Parse(parts[0], CultureInfo.InvariantCulture), cout = int.Parse(parts[1], CultureInfo.InvariantCulture);
        int size = int.Parse(parts[2], CultureInfo.InvariantCulture), batch = int.Parse(parts[3], CultureInfo.InvariantCulture);
        var rng = new Random(1);
        float[] Rand(int n, float scale) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale; return a; }
        var x = Rand(batch * cin * size * size, 1f);
        var w = Rand(cout * cin * 9, 1f / MathF.Sqrt(cin * 9));
        var b = Rand(cout, 0.1f);
        using var device = new CpuDevice(threads);
        using var tx = device.Upload(x, batch, cin, size, size);
        using var tw = device.Upload(w, cout, cin, 3, 3);
        using var tb = device.Upload(b, cout);
        using var ty = device.Allocate(batch, cout, size, size);

        var graph = new OnnxGraph().Input("x", batch, cin, size, size).Output("y", batch, cout, size, size)
            .Initializer("w", w, cout, cin, 3, 3).Initializer("bias", b, cout)
            .Node("Conv", ["x", "w", "bias"], ["y"], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));
        using var options = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        using var session = new InferenceSession(graph.ToModel(), options);
        using var input = OrtValue.CreateTensorValueFromMemory(x, [batch, cin, size, size]);
        using var runOptions = new RunOptions();
        var direct = DirectConv.Supports512 ? ConvAlgorithm.Direct512 : ConvAlgorithm.Direct256;
        Action[] cases =
        [
            () => { device.ConvAlgorithm = direct; device.Conv2d(tx, tw, tb, ty, 1, 1); },
            () => { device.ConvAlgorithm = ConvAlgorithm.Winograd; device.Conv2d(tx, tw, tb, ty, 1, 1); },
            () => { using var o = session.Run(runOptions, ["x"], [input], ["y"]); },
        ];
        var cpu = cases.Select(_ => new List<double>()).ToArray();
        var wall = cases.Select(_ => new List<double>()).ToArray();
        foreach (var warm in cases) warm();
        var process = Process.GetCurrentProcess();
        for (int r = 0; r < rounds; r++)
            for (int i = 0; i < cases.Length; i++)
            {
                int k = r % 2 == 0 ? i : cases.Length - 1 - i;
                process.Refresh();
                var c0 = process.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                cases[k]();
                sw.Stop();
                process.Refresh();
                cpu[k].Add((process.TotalProcessorTime - c0).TotalMilliseconds / threads);
                wall[k].Add(sw.Elapsed.TotalMilliseconds);
            }
        double flop = 2.0 * batch * cin * cout * 9 * size * (double)size;
        double[] c = cpu.Select(Median).ToArray(), wl = wall.Select(Median).ToArray();
        double G(double ms) => flop / (ms * 1e-3) / 1e9;
        // CPU ms are per thread (process CPU time / threads), so GFLOP/s compare with the cores' peak.
        return string.Create(CultureInfo.InvariantCulture,
            $"| {cin}->{cout} {size}x{size} n{batch} | {c[0]:F1} | {c[1]:F1} | {c[2]:F1} | {G(c[0]):F0} | {G(c[1]):F0} | {G(c[2]):F0} | {c[0] / c[1]:F2} | {c[2] / c[1]:F2} | {wl[2] / wl[1]:F2} |");
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToArray();
        return s.Length % 2 == 1 ? s[s.Length / 2] : 0.5 * (s[s.Length / 2 - 1] + s[s.Length / 2]);
    }

    private static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
