using System.Diagnostics;
using System.Globalization;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--conv-timings</c>: the 3x3 stride-1 padded convolutions of SD 1.5 (VAE decoder at batch 1, UNet at batch 2)
/// timed with a Stopwatch and the process CPU time, the engine and an in-process ONNX Runtime Conv node with the same
/// thread count alternating call by call (order flipped each round), for 1 and 2 threads. Quicker than
/// BenchmarkDotNet on a loaded machine and it reports what varies: median and range of GFLOP/s by wall time, and the
/// median CPU seconds per call of each side. Options: <c>--threads 1,2</c>, <c>--rounds N</c> (default 5),
/// <c>--shapes NAME,...</c> (CIN-COUT-HxW-nN as printed, e.g. <c>512-512-64x64-n1</c>; any sizes), <c>--algo auto|gemm|direct</c>,
/// <c>--no-ort</c>. Images of 512 rows are cut to 128 rows (same row width, so the same bands and tiles; a
/// quarter of the time), which the printed name says.
/// </summary>
public static class ConvSdTimings
{
    /// <summary>One convolution: channels in and out, image rows and columns, batch.</summary>
    public readonly record struct Case(int Cin, int Cout, int H, int W, int N)
    {
        public string Name => $"{Cin}-{Cout}-{H}x{W}-n{N}";
        public double Flops => 2.0 * N * Cin * Cout * 9 * H * W;
    }

    /// <summary>The VAE decoder's and the UNet's 3x3 shapes, largest share first within each model.</summary>
    public static readonly Case[] Shapes =
    [
        new(512, 512, 128, 128, 1), new(256, 256, 256, 256, 1), new(128, 128, 128, 512, 1), new(256, 256, 128, 512, 1),
        new(512, 512, 256, 256, 1), new(512, 512, 64, 64, 1), new(256, 128, 128, 512, 1), new(512, 256, 256, 256, 1),
        new(320, 320, 64, 64, 2), new(640, 640, 32, 32, 2), new(1280, 1280, 16, 16, 2), new(1280, 1280, 8, 8, 2),
        new(640, 320, 64, 64, 2), new(2560, 1280, 16, 16, 2),
    ];

    public static int Run(string[] args)
    {
        string? Opt(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int[] threads = (Opt("--threads") ?? "1,2").Split(',').Select(int.Parse).ToArray();
        int rounds = int.Parse(Opt("--rounds") ?? "5", CultureInfo.InvariantCulture);
        var names = Opt("--shapes")?.Split(',');
        var algo = (Opt("--algo") ?? "auto") switch
        {
            "gemm" => ConvAlgorithm.Gemm,
            "direct" => DirectConv.Supports512 ? ConvAlgorithm.Direct512 : ConvAlgorithm.Direct256,
            _ => ConvAlgorithm.Auto,
        };
        bool ort = !args.Contains("--no-ort");
        Console.WriteLine($"conv3x3 timings {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, algo {algo}, {rounds} rounds, load {Load()}");
        Console.WriteLine("| shape | threads | engine GFLOP/s median (range) | ORT GFLOP/s median (range) | engine / ORT speed | engine CPU s | ORT CPU s |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|");
        foreach (int t in threads)
            foreach (var c in names is null ? Shapes : names.Select(Parse))
                Time(c, t, rounds, algo, ort);
        Console.WriteLine($"load after: {Load()}");
        return 0;
    }

    /// <summary>A case from its name, CIN-COUT-HxW-nN (any sizes, not only the listed ones).</summary>
    private static Case Parse(string name)
    {
        var p = name.Split('-', 'x', 'n').Where(t => t.Length > 0).Select(int.Parse).ToArray();
        return new Case(p[0], p[1], p[2], p[3], p[4]);
    }

    private static void Time(Case c, int threads, int rounds, ConvAlgorithm algo, bool withOrt)
    {
        var rng = new Random(1);
        float[] Rand(int n, float scale) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale; return a; }
        var x = Rand(c.N * c.Cin * c.H * c.W, 1f);
        var w = Rand(c.Cout * c.Cin * 9, 0.05f);
        var b = Rand(c.Cout, 0.1f);
        using var device = new CpuDevice(threads) { ConvAlgorithm = algo };
        using var tx = device.Upload(x, c.N, c.Cin, c.H, c.W);
        using var tw = device.Upload(w, c.Cout, c.Cin, 3, 3);
        using var tb = device.Upload(b, c.Cout);
        using var ty = device.Allocate(c.N, c.Cout, c.H, c.W);
        Action engine = () => device.Conv2d(tx, tw, tb, ty, stride: 1, padding: 1);
        InferenceSession? session = null;
        OrtValue? input = null;
        Action? ort = null;
        if (withOrt)
        {
            var graph = new OnnxGraph().Input("x", c.N, c.Cin, c.H, c.W).Output("y", c.N, c.Cout, c.H, c.W)
                .Initializer("w", w, c.Cout, c.Cin, 3, 3).Initializer("bias", b, c.Cout)
                .Node("Conv", ["x", "w", "bias"], ["y"], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }));
            session = new InferenceSession(graph.ToModel(), new SessionOptions
            {
                IntraOpNumThreads = threads, InterOpNumThreads = 1,
                ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            });
            input = OrtValue.CreateTensorValueFromMemory(x, [c.N, c.Cin, c.H, c.W]);
            var runOptions = new RunOptions();
            ort = () => { using var o = session.Run(runOptions, ["x"], [input], ["y"]); };
        }
        // Warm-up: enough calls (and time) for tiered compilation to reach its optimised code.
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || (i < 60 && warm.Elapsed.TotalSeconds < 1); i++) { engine(); ort?.Invoke(); }
        var (ew, ec) = (new List<double>(), new List<double>());
        var (ow, oc) = (new List<double>(), new List<double>());
        for (int r = 0; r < rounds; r++)
        {
            if (r % 2 == 0) { Measure(engine, ew, ec); if (ort is not null) Measure(ort, ow, oc); }
            else { if (ort is not null) Measure(ort, ow, oc); Measure(engine, ew, ec); }
        }
        input?.Dispose();
        session?.Dispose();
        double g = c.Flops / 1e9;
        string Gf(List<double> wall) => wall.Count == 0 ? "-" :
            string.Create(CultureInfo.InvariantCulture, $"{g / Median(wall):F0} ({g / wall.Max():F0}-{g / wall.Min():F0})");
        string ratio = ow.Count == 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{Median(ow) / Median(ew):F2}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {c.Name} | {threads} | {Gf(ew)} | {Gf(ow)} | {ratio} | {Median(ec):F3} | {(oc.Count == 0 ? "-" : Median(oc).ToString("F3", CultureInfo.InvariantCulture))} |"));
    }

    private static void Measure(Action a, List<double> wall, List<double> cpu)
    {
        var p = Process.GetCurrentProcess();
        var c0 = p.TotalProcessorTime;
        long t0 = Stopwatch.GetTimestamp();
        a();
        wall.Add((Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency);
        p.Refresh();
        cpu.Add((p.TotalProcessorTime - c0).TotalSeconds);
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(d => d).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    private static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
