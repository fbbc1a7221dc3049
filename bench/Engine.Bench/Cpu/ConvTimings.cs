using System.Diagnostics;
using System.Globalization;
using System.Text;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--conv-timings</c>: the 3x3 convolutions of SD 1.5 (VAE decoder at batch 1, UNet at batch 2, the UNet's
/// stride-2 downsamplers and its 4-channel conv_in) timed with every CPU algorithm that takes the shape (the
/// automatic choice, the direct kernel, Winograd F(2x2, 3x3) at stride 1, the packed-GEMM path) and an in-process
/// ONNX Runtime Conv node with the same weights and thread count, alternating call by call (order reversed every
/// other round) so that load drifting over the run hits all of them alike. Per case it reports the median (and
/// range) GFLOP/s by wall time, the median process CPU milliseconds per call, and each engine algorithm's speed
/// relative to ORT (ORT's median wall / the algorithm's). A Stopwatch harness rather than BenchmarkDotNet, so that a
/// sweep at 1 and 2 threads fits a few minutes of the shared lock.
/// <para>
/// Options: <c>--threads 1,2</c> (default 2), <c>--rounds N</c> (default 5), <c>--shapes NAME,...</c> with NAME
/// <c>CIN-COUT-HxW-nN</c> plus optional <c>-s2</c> (stride; padding stays 1) and <c>-f16</c> (half weights, as the
/// UNet loads them; ORT gets the same values widened), e.g. <c>1280-1280-16x16-n2-f16</c>; <c>--weights f16</c>
/// makes every case half; <c>--algos auto,direct,unstacked,winograd,gemm,ort</c> (default all; unstacked: the direct kernel with few positions per image, the route before <c>DirectConv.RunStacked</c>); <c>--out FILE</c> also writes
/// the table.
/// The VAE's 512x512 shapes are timed at 128x512 (same row width, so the same bands and tiles; a quarter of the time).
/// </para>
/// </summary>
public static class ConvTimings
{
    /// <summary>One convolution: channels in and out, image rows and columns, batch, stride, half weights.</summary>
    public readonly record struct Case(int Cin, int Cout, int H, int W, int N, int Stride = 1, bool Half = false)
    {
        public string Name => $"{Cin}-{Cout}-{H}x{W}-n{N}{(Stride == 1 ? "" : $"-s{Stride}")}{(Half ? "-f16" : "")}";
        public int Ho => (H + 2 - 3) / Stride + 1;
        public int Wo => (W + 2 - 3) / Stride + 1;
        public double Flops => 2.0 * N * Cin * Cout * 9 * Ho * Wo;
    }

    /// <summary>The VAE decoder's shapes, then the UNet's (by their share of the step), largest first within each model.</summary>
    public static readonly Case[] Shapes =
    [
        new(512, 512, 128, 128, 1), new(256, 256, 256, 256, 1), new(128, 128, 128, 512, 1), new(256, 256, 128, 512, 1),
        new(512, 512, 256, 256, 1), new(512, 512, 64, 64, 1), new(256, 128, 128, 512, 1), new(512, 256, 256, 256, 1),
        new(1280, 1280, 16, 16, 2, 1, true), new(320, 320, 64, 64, 2, 1, true), new(2560, 1280, 16, 16, 2, 1, true),
        new(640, 640, 32, 32, 2, 1, true), new(1280, 1280, 8, 8, 2, 1, true), new(1280, 1280, 32, 32, 2, 1, true),
        new(640, 1280, 16, 16, 2, 1, true), new(320, 320, 64, 64, 2, 2, true), new(1920, 1280, 16, 16, 2, 1, true),
        new(1920, 640, 32, 32, 2, 1, true), new(2560, 1280, 8, 8, 2, 1, true), new(640, 320, 64, 64, 2, 1, true),
        new(320, 640, 32, 32, 2, 1, true), new(1280, 1280, 16, 16, 2, 2, true), new(640, 640, 32, 32, 2, 2, true),
        new(4, 320, 64, 64, 2, 1, true),
    ];

    private static readonly string[] AllAlgos = ["auto", "direct", "unstacked", "winograd", "gemm", "ort"];

    public static int Run(string[] args)
    {
        string? Opt(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int[] threads = (Opt("--threads") ?? "2").Split(',').Select(t => int.Parse(t, CultureInfo.InvariantCulture)).ToArray();
        int rounds = int.Parse(Opt("--rounds") ?? "5", CultureInfo.InvariantCulture);
        bool allHalf = Opt("--weights") == "f16";
        var algos = Opt("--algos")?.Split(',') ?? AllAlgos;
        foreach (var a in algos)
            if (!AllAlgos.Contains(a)) throw new ArgumentException($"--algos: unknown algorithm '{a}' (expected {string.Join(", ", AllAlgos)}).");
        var cases = (Opt("--shapes")?.Split(',').Select(Parse) ?? Shapes).Select(c => allHalf ? c with { Half = true } : c).ToArray();
        var text = new StringBuilder();
        void Line(string s) { Console.WriteLine(s); text.AppendLine(s); }
        Line($"conv3x3 timings {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {rounds} rounds, load {Load()}; GFLOP/s by wall median (range), CPU ms median, speed = ORT wall / engine wall");
        Line("");
        Line("| shape | threads | " + string.Join(" | ", algos.Select(a => $"{a} GFLOP/s | {a} CPU ms")) +
             (algos.Contains("ort") ? " | " + string.Join(" | ", algos.Where(a => a != "ort").Select(a => $"{a} / ORT")) : "") + " |");
        int columns = 2 + 2 * algos.Length + (algos.Contains("ort") ? algos.Length - 1 : 0);
        Line("|---|" + string.Concat(Enumerable.Repeat("---:|", columns - 1)));
        foreach (int t in threads)
            foreach (var c in cases)
                Line(Time(c, t, rounds, algos));
        Line("");
        Line($"load after: {Load()}");
        if (Opt("--out") is { } path) File.WriteAllText(path, text.ToString());
        return 0;
    }

    /// <summary>A case from its name, CIN-COUT-HxW-nN[-sS][-f16] (any sizes, not only the listed ones).</summary>
    private static Case Parse(string name)
    {
        var parts = name.Split('-');
        int stride = 1;
        bool half = false;
        foreach (var p in parts.Skip(4))
            if (p == "f16") half = true;
            else if (p.StartsWith('s')) stride = int.Parse(p[1..], CultureInfo.InvariantCulture);
            else throw new ArgumentException($"--shapes: '{name}' has an unknown part '{p}' (expected CIN-COUT-HxW-nN[-sS][-f16]).");
        var hw = parts[2].Split('x');
        return new Case(int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture),
            int.Parse(hw[0], CultureInfo.InvariantCulture), int.Parse(hw[1], CultureInfo.InvariantCulture),
            int.Parse(parts[3].TrimStart('n'), CultureInfo.InvariantCulture), stride, half);
    }

    private static string Time(Case c, int threads, int rounds, string[] algos)
    {
        var rng = new Random(1);
        float[] Rand(int n, float scale) { var a = new float[n]; for (int i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale; return a; }
        var x = Rand(c.N * c.Cin * c.H * c.W, 1f);
        var w = Rand(c.Cout * c.Cin * 9, 1f / MathF.Sqrt(c.Cin * 9));
        var b = Rand(c.Cout, 0.1f);
        using var device = new CpuDevice(threads);
        using var tx = device.Upload(x, c.N, c.Cin, c.H, c.W);
        using var tw32 = device.Upload(w, c.Cout, c.Cin, 3, 3);
        using var tw16 = c.Half ? device.Convert(tw32, DType.F16) : null;
        if (tw16 is not null) w = tw16.ToArray();
        var tw = tw16 ?? tw32;
        using var tb = device.Upload(b, c.Cout);
        using var ty = device.Allocate(c.N, c.Cout, c.Ho, c.Wo);
        var direct = DirectConv.Supports512 ? ConvAlgorithm.Direct512 : ConvAlgorithm.Direct256;
        Action Engine(ConvAlgorithm algorithm, bool stacked = true) => () =>
        {
            device.ConvAlgorithm = algorithm;
            DirectConv.StackFewPositions = stacked;
            try { device.Conv2d(tx, tw, tb, ty, c.Stride, 1); }
            finally { DirectConv.StackFewPositions = true; }
        };
        InferenceSession? session = null;
        OrtValue? input = null;
        RunOptions? runOptions = null;
        var runs = new List<(string Name, Action Run)>();
        foreach (var a in algos)
            switch (a)
            {
                case "auto": runs.Add((a, Engine(ConvAlgorithm.Auto))); break;
                case "direct": runs.Add((a, Engine(direct))); break;
                // The direct kernel with few positions run per image, as before the stacked route.
                case "unstacked": runs.Add((a, Engine(direct, stacked: false))); break;
                case "gemm": runs.Add((a, Engine(ConvAlgorithm.Gemm))); break;
                // Winograd takes stride-1 shapes only (forced elsewhere it falls back to the automatic choice).
                case "winograd": if (c.Stride == 1) runs.Add((a, Engine(ConvAlgorithm.Winograd))); break;
                case "ort":
                    var graph = new OnnxGraph().Input("x", c.N, c.Cin, c.H, c.W).Output("y", c.N, c.Cout, c.Ho, c.Wo)
                        .Initializer("w", w, c.Cout, c.Cin, 3, 3).Initializer("bias", b, c.Cout)
                        .Node("Conv", ["x", "w", "bias"], ["y"], ("kernel_shape", new long[] { 3, 3 }), ("pads", new long[] { 1, 1, 1, 1 }),
                            ("strides", new long[] { c.Stride, c.Stride }));
                    session = new InferenceSession(graph.ToModel(), new SessionOptions
                    {
                        IntraOpNumThreads = threads, InterOpNumThreads = 1,
                        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
                    });
                    input = OrtValue.CreateTensorValueFromMemory(x, [c.N, c.Cin, c.H, c.W]);
                    runOptions = new RunOptions();
                    var (s, i, r) = (session, input, runOptions);
                    runs.Add((a, () => { using var o = s.Run(r, ["x"], [i], ["y"]); }));
                    break;
            }
        // Warm-up: enough calls (and time) for tiered compilation to reach its optimised code.
        var warm = Stopwatch.StartNew();
        for (int i = 0; i < 3 || (i < 30 && warm.Elapsed.TotalSeconds < 1); i++) foreach (var run in runs) run.Run();
        var wall = runs.Select(_ => new List<double>()).ToArray();
        var cpu = runs.Select(_ => new List<double>()).ToArray();
        for (int round = 0; round < rounds; round++)
            for (int k = 0; k < runs.Count; k++)
            {
                int j = round % 2 == 0 ? k : runs.Count - 1 - k;
                Measure(runs[j].Run, wall[j], cpu[j]);
            }
        input?.Dispose();
        session?.Dispose();
        runOptions?.Dispose();
        double g = c.Flops / 1e9;
        var cells = new List<string> { c.Name, threads.ToString(CultureInfo.InvariantCulture) };
        int ortIndex = runs.FindIndex(r => r.Name == "ort");
        foreach (var a in algos)
        {
            int j = runs.FindIndex(r => r.Name == a);
            cells.Add(j < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{g / Median(wall[j]):F0} ({g / wall[j].Max():F0}-{g / wall[j].Min():F0})"));
            cells.Add(j < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{1e3 * Median(cpu[j]):F1}"));
        }
        if (algos.Contains("ort"))
            foreach (var a in algos.Where(a => a != "ort"))
            {
                int j = runs.FindIndex(r => r.Name == a);
                cells.Add(j < 0 || ortIndex < 0 ? "-" : string.Create(CultureInfo.InvariantCulture, $"{Median(wall[ortIndex]) / Median(wall[j]):F2}"));
            }
        return "| " + string.Join(" | ", cells) + " |";
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
