using System.Diagnostics;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;
using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench.Cpu;

/// <summary>
/// Stopwatch harness for the CPU GEMM at the full-size SD 1.5 shapes (<c>--gemm-sd-shapes [--threads N] [--rounds R]
/// [--filter TEXT[,TEXT...]]</c>, cases whose name contains any of the texts): the Linear layers of the UNet at batch 2 (rows x in -> out) with float32 and float16 weights,
/// and the 1x1 convolutions of the UNet and the VAE decoder, each against an in-memory ONNX Runtime node with the same
/// thread count (MatMul + Add with a constant weight; Conv 1x1), alternated in one process for several rounds.
/// Each measurement repeats the op for at least 0.25 s and reports process CPU time per call (ORT's thread spinning is
/// turned off so that its CPU time is its work) and wall time; the table gives medians over the rounds in GFLOP/s
/// (2 M N K flops per call) by CPU time and the range; wall time, which alone shows threads left idle by an uneven split,
/// is given as the best round (the least disturbed on a shared machine).
/// </summary>
public static class GemmSdShapesTimings
{
    private sealed record Case(string Name, double Flops, Action Engine, Action EngineF16, Action Ort, IDisposable[] Owned);

    /// <summary>Runs the harness; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        int threads = Option(args, "--threads", Environment.ProcessorCount);
        int rounds = Option(args, "--rounds", 5);
        int f = Array.IndexOf(args, "--filter");
        string? filter = f >= 0 && f + 1 < args.Length ? args[f + 1] : null;
        using var device = new CpuDevice(threads);
        Console.WriteLine($"# CPU GEMM at SD shapes, {device.Name}, ORT {threads} threads, {rounds} rounds, load {Load()}");
        Console.WriteLine("| case | engine f32 GFLOP/s (range) | engine f16-weight GFLOP/s (range) | ORT GFLOP/s (range) | engine f16 / ORT | best wall GFLOP/s: engine f16, ORT |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var (name, build) in Cases())
        {
            if (filter is not null && !filter.Split(',').Any(name.Contains)) continue;
            var c = build(device, threads);
            var e = new List<(double Cpu, double Wall)>(); var h = new List<(double Cpu, double Wall)>();
            var o = new List<(double Cpu, double Wall)>();
            c.Engine(); c.EngineF16(); c.Ort();
            for (int r = 0; r < rounds; r++)
            {
                e.Add(Time(c.Engine));
                h.Add(Time(c.EngineF16));
                o.Add(Time(c.Ort));
            }
            double G(double seconds) => c.Flops / seconds / 1e9;
            string Rate(List<(double Cpu, double Wall)> t) => $"{G(Median(t.Select(x => x.Cpu))):F1} ({G(t.Max(x => x.Cpu)):F1}-{G(t.Min(x => x.Cpu)):F1})";
            double mh = Median(h.Select(x => x.Cpu)), mo = Median(o.Select(x => x.Cpu));
            Console.WriteLine($"| {name} | {Rate(e)} | {Rate(h)} | {Rate(o)} | {mo / mh:F2} | {G(h.Min(x => x.Wall)):F1}, {G(o.Min(x => x.Wall)):F1} |");
            foreach (var d in c.Owned) d.Dispose();
        }
        Console.WriteLine($"load after: {Load()}");
        return 0;
    }

    private static IEnumerable<(string, Func<CpuDevice, int, Case>)> Cases()
    {
        (int Rows, int In, int Out)[] linears =
        [
            (8192, 320, 320), (8192, 320, 2560), (8192, 1280, 320), (2048, 640, 640), (2048, 640, 5120),
            (512, 1280, 1280), (512, 1280, 10240), (154, 768, 320), (8192, 768, 320),
            // Cross-attention key / value projections of the 77-token text, the 8x8 level and the feed-forward down-projection.
            (154, 768, 640), (154, 768, 1280), (128, 1280, 1280), (512, 5120, 1280), (128, 5120, 1280),
        ];
        foreach (var l in linears) yield return ($"linear {l.Rows}x{l.In}->{l.Out}", (d, t) => LinearCase(d, t, l.Rows, l.In, l.Out));
        (int Cin, int Cout, int Size, int Batch)[] convs =
        [
            (320, 320, 64, 2), (640, 640, 32, 2), (1280, 1280, 16, 2), (1280, 1280, 8, 2), (512, 512, 64, 1), (512, 256, 256, 1), (256, 128, 512, 1),
        ];
        foreach (var c in convs) yield return ($"conv1x1 {c.Cin}->{c.Cout} {c.Size}x{c.Size} b{c.Batch}", (d, t) => ConvCase(d, t, c.Cin, c.Cout, c.Size, c.Batch));
    }

    private static Case LinearCase(CpuDevice device, int threads, int rows, int inF, int outF)
    {
        var x = device.Upload(RandomArray(1f, rows, inF), rows, inF);
        float[] w = RandomArray(0.05f, outF, inF), bias = RandomArray(0.1f, outF);
        var weight = device.Upload(w, outF, inF);
        var weight16 = device.Convert(weight, DType.F16);
        var b = device.Upload(bias, outF);
        var y = device.Allocate(rows, outF);
        var wt = new float[inF * outF];
        for (int o = 0; o < outF; o++) for (int i = 0; i < inF; i++) wt[i * outF + o] = w[o * inF + i];
        var graph = new OnnxGraph().Input("x", rows, inF).Output("y", rows, outF)
            .Initializer("w", wt, inF, outF).Initializer("b", bias, outF)
            .Node("MatMul", ["x", "w"], ["xw"]).Node("Add", ["xw", "b"], ["y"]);
        var peer = Peer(graph, threads, ("x", RandomArray(1f, rows, inF), [rows, inF]));
        return new Case($"linear {rows}x{inF}->{outF}", 2.0 * rows * inF * outF,
            () => device.Linear(x, weight, b, y), () => device.Linear(x, weight16, b, y), peer.Run, [x, weight, weight16, b, y, peer]);
    }

    private static Case ConvCase(CpuDevice device, int threads, int cin, int cout, int size, int batch)
    {
        var x = device.Upload(RandomArray(1f, batch, cin, size, size), batch, cin, size, size);
        float[] w = RandomArray(0.05f, cout, cin, 1, 1), bias = RandomArray(0.1f, cout);
        var weight = device.Upload(w, cout, cin, 1, 1);
        var weight16 = device.Convert(weight, DType.F16);
        var b = device.Upload(bias, cout);
        var y = device.Allocate(batch, cout, size, size);
        var graph = new OnnxGraph().Input("x", batch, cin, size, size).Output("y", batch, cout, size, size)
            .Initializer("w", w, cout, cin, 1, 1).Initializer("b", bias, cout)
            .Node("Conv", ["x", "w", "b"], ["y"], ("kernel_shape", new long[] { 1, 1 }));
        var peer = Peer(graph, threads, ("x", RandomArray(1f, batch, cin, size, size), [batch, cin, size, size]));
        return new Case($"conv1x1 {cin}->{cout}", 2.0 * batch * cin * cout * size * size,
            () => device.Conv2d(x, weight, b, y, stride: 1, padding: 0), () => device.Conv2d(x, weight16, b, y, stride: 1, padding: 0),
            peer.Run, [x, weight, weight16, b, y, peer]);
    }

    private sealed class OrtSession(InferenceSession session, OrtValue input, string inputName, string outputName) : IDisposable
    {
        private readonly RunOptions _run = new();

        public void Run()
        {
            using var outputs = session.Run(_run, [inputName], [input], [outputName]);
        }

        public void Dispose() { input.Dispose(); _run.Dispose(); session.Dispose(); }
    }

    private static OrtSession Peer(OnnxGraph graph, int threads, (string Name, float[] Data, long[] Shape) input)
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
        };
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        var session = new InferenceSession(graph.ToModel(), options);
        return new OrtSession(session, OrtValue.CreateTensorValueFromMemory(input.Data, input.Shape), input.Name, session.OutputMetadata.Keys.First());
    }

    private static (double Cpu, double Wall) Time(Action op)
    {
        var process = Process.GetCurrentProcess();
        int calls = 0;
        process.Refresh();
        var cpu0 = process.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        do { op(); calls++; } while (sw.Elapsed.TotalSeconds < 0.25);
        sw.Stop();
        process.Refresh();
        return ((process.TotalProcessorTime - cpu0).TotalSeconds / calls, sw.Elapsed.TotalSeconds / calls);
    }

    private static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    private static float[] RandomArray(float scale, params int[] shape)
    {
        var rng = new Random(shape.Aggregate(17, (h, d) => h * 31 + d));
        var data = new float[Tensor.ShapeLength(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return data;
    }

    private static int Option(string[] args, string name, int fallback)
    {
        int i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1]) : fallback;
    }

    private static string Load() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
}
