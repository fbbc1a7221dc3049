using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--norm-ops [--threads N] [--filter TEXT] [--out FILE]</c>: the CPU device's memory-bound ops (LayerNorm,
/// GroupNorm(+SiLU), nearest 2x upsampling, transposes, GEGLU) at the SD 1.5 UNet and VAE shapes, against the
/// same ONNX Runtime node (or the subgraph the SD export holds: GroupNorm as Reshape + InstanceNormalization +
/// Reshape + Mul + Add (+ Sigmoid + Mul), GEGLU as Split + erf-GELU + Mul) on the same number of threads, in
/// one process. Made for a loaded shared machine: each round runs a block of engine calls then a block of ORT
/// calls (order flipped each round), the first call of each block not counted, and times them by the
/// process's CPU time (getrusage; ORT's threads are told not to spin) as well as by wall time. Prints and
/// writes a markdown table of medians and ranges with the bandwidth each side reaches (bytes that must be
/// read and written once / wall time), and the wall time of each side's first call.
/// </summary>
public static class NormOpTimings
{
    private sealed record Case(string Op, string Shape, long Bytes, Func<CpuDevice, Action> Engine, Func<int, OrtPeer> Peer);

    /// <summary>Runs the cases whose "op shape" contains <paramref name="filter"/>; returns the exit code.</summary>
    public static int Run(int threads, string? filter, string? outFile)
    {
        threads = threads > 0 ? threads : Environment.ProcessorCount;
        string load = File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        var table = new StringBuilder();
        table.AppendLine(CultureInfo.InvariantCulture, $"CPU memory-bound ops, {threads} thread(s), {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average before: {load}");
        table.AppendLine();
        table.AppendLine("| op | shape | engine CPU ms | ORT CPU ms | CPU engine / ORT | engine wall ms | ORT wall ms | engine GB/s | ORT GB/s | engine 1st call ms | ORT 1st call ms |");
        table.AppendLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.WriteLine(table.ToString());
        using var device = new CpuDevice(threads);
        foreach (var c in Cases())
        {
            if (filter is not null && !$"{c.Op} {c.Shape}".Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
            var engine = c.Engine(device);
            using var peer = c.Peer(threads);
            double eFirst = Time(engine), oFirst = Time(peer.Run);
            var (eCpu, eWall, oCpu, oWall) = Alternate(engine, peer.Run);
            string row = string.Create(CultureInfo.InvariantCulture,
                $"| {c.Op} | {c.Shape} | {Format(eCpu)} | {Format(oCpu)} | {Median(eCpu) / Median(oCpu):F2} | {Format(eWall)} | {Format(oWall)} | {c.Bytes / Median(eWall) / 1e6:F1} | {c.Bytes / Median(oWall) / 1e6:F1} | {eFirst:F3} | {oFirst:F3} |");
            Console.WriteLine(row);
            table.AppendLine(row);
            device.TrimPool();
            GC.Collect();
        }
        if (outFile is not null) File.WriteAllText(outFile, table.ToString());
        return 0;
    }

    /// <summary>Wall milliseconds of one call (the first calls: tier-0 code and first-touch page faults included).</summary>
    private static double Time(Action op)
    {
        long t0 = Stopwatch.GetTimestamp();
        op();
        return (Stopwatch.GetTimestamp() - t0) * 1e3 / Stopwatch.Frequency;
    }

    private static string Format(List<double> ms) =>
        string.Create(CultureInfo.InvariantCulture, $"{Median(ms):F3} [{ms.Min():F3}-{ms.Max():F3}]");

    /// <summary>
    /// Per-call CPU and wall milliseconds of both sides, one sample per block (7 rounds), after a warm-up of
    /// about 0.3 s or 30 calls a side, so that the engine's methods have reached their optimised tier.
    /// </summary>
    private static (List<double>, List<double>, List<double>, List<double>) Alternate(Action engine, Action ort)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 30 || sw.Elapsed.TotalSeconds < 0.3; i++) { engine(); if (i > 1000) break; }
        ort(); ort();
        sw.Restart();
        engine();
        double once = Math.Max(sw.Elapsed.TotalSeconds, 1e-6);
        int calls = (int)Math.Clamp(0.15 / once, 3, 200);
        List<double> eCpu = [], eWall = [], oCpu = [], oWall = [];
        for (int r = 0; r < 7; r++)
        {
            if (r % 2 == 0) { Block(engine, calls, eCpu, eWall); Block(ort, calls, oCpu, oWall); }
            else { Block(ort, calls, oCpu, oWall); Block(engine, calls, eCpu, eWall); }
        }
        return (eCpu, eWall, oCpu, oWall);
    }

    private static void Block(Action op, int calls, List<double> cpu, List<double> wall)
    {
        op();
        double c0 = ProcessCpu.Seconds();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) op();
        double elapsed = (Stopwatch.GetTimestamp() - t0) / (double)Stopwatch.Frequency;
        cpu.Add((ProcessCpu.Seconds() - c0) * 1e3 / calls);
        wall.Add(elapsed * 1e3 / calls);
    }

    private static double Median(List<double> v)
    {
        var s = v.Order().ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    private static float[] RandomArray(float scale, long length, int seed)
    {
        var rng = new Random(seed);
        var data = new float[length];
        for (long i = 0; i < length; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return data;
    }

    private static (Array, long[]) Input(float[] data, params long[] shape) => (data, shape);

    private static Dictionary<string, (Array, long[])> Inputs(float[] x, params long[] shape) => new() { ["x"] = Input(x, shape) };

    private static IEnumerable<Case> Cases()
    {
        foreach (var (tokens, width) in new[] { (4096, 320), (1024, 640), (256, 1280), (64, 1280) })
            yield return LayerNorm(2, tokens, width);
        foreach (var (n, c, s, silu) in new[] { (2, 320, 64, true), (2, 320, 64, false), (2, 640, 32, true), (2, 1280, 16, true), (2, 1280, 8, true), (2, 2560, 8, true),
                     (1, 512, 64, true), (1, 512, 128, true), (1, 256, 256, true), (1, 128, 512, true) })
            yield return GroupNorm(n, c, s, silu);
        foreach (var (n, c, s) in new[] { (1, 512, 64), (1, 512, 128), (1, 256, 256), (2, 1280, 16), (2, 640, 32) })
            yield return Upsample(n, c, s);
        foreach (var (b, m, k) in new[] { (2, 320, 4096), (2, 4096, 320), (2, 640, 1024), (2, 1024, 640), (1, 4096, 512), (1, 512, 4096) })
            yield return Transpose(b, m, k);
        foreach (var (tokens, width) in new[] { (4096, 1280), (1024, 2560), (256, 5120) })
            yield return Geglu(2, tokens, width);
    }

    private static Case LayerNorm(int b, int tokens, int width)
    {
        long n = (long)b * tokens * width;
        var x = RandomArray(2f, n, 1);
        var gamma = RandomArray(1f, width, 2);
        var beta = RandomArray(1f, width, 3);
        return new Case("LayerNorm", $"{b}x{tokens}x{width}", 8 * n, device =>
        {
            var tx = device.Upload(x, b, tokens, width);
            var tg = device.Upload(gamma, width);
            var tb = device.Upload(beta, width);
            var ty = device.Allocate(b, tokens, width);
            return () => device.LayerNorm(tx, tg, tb, ty, 1e-5f);
        }, threads => OrtPeer.FromBytes(new OnnxGraph().Input("x", b, tokens, width).Output("y", b, tokens, width)
            .Initializer("gamma", gamma, width).Initializer("beta", beta, width)
            .Node("LayerNormalization", ["x", "gamma", "beta"], ["y"], ("axis", -1L), ("epsilon", 1e-5f)).ToModel(), Inputs(x, b, tokens, width), threads));
    }

    private static Case GroupNorm(int b, int c, int s, bool silu)
    {
        const int Groups = 32;
        long n = (long)b * c * s * s;
        var x = RandomArray(2f, n, 4);
        var gamma = RandomArray(1f, c, 5);
        var beta = RandomArray(1f, c, 6);
        return new Case(silu ? "GroupNorm+SiLU" : "GroupNorm", $"{b}x{c}x{s}x{s}", 8 * n, device =>
        {
            var tx = device.Upload(x, b, c, s, s);
            var tg = device.Upload(gamma, c);
            var tb = device.Upload(beta, c);
            var ty = device.Allocate(b, c, s, s);
            return () => device.GroupNorm(tx, tg, tb, ty, Groups, 1e-5f, silu);
        }, threads =>
        {
            var g = new OnnxGraph().Input("x", b, c, s, s).Output("y", b, c, s, s)
                .Initializer("grouped", [b, Groups, -1L]).Initializer("full", [b, c, s, s])
                .Initializer("ones", Enumerable.Repeat(1f, Groups).ToArray(), Groups).Initializer("zeros", new float[Groups], Groups)
                .Initializer("gamma", gamma, c, 1, 1).Initializer("beta", beta, c, 1, 1)
                .Node("Reshape", ["x", "grouped"], ["xg"])
                .Node("InstanceNormalization", ["xg", "ones", "zeros"], ["ng"], ("epsilon", 1e-5f))
                .Node("Reshape", ["ng", "full"], ["nf"])
                .Node("Mul", ["nf", "gamma"], ["scaled"])
                .Node("Add", ["scaled", "beta"], [silu ? "affine" : "y"]);
            if (silu) g.Node("Sigmoid", ["affine"], ["sig"]).Node("Mul", ["affine", "sig"], ["y"]);
            return OrtPeer.FromBytes(g.ToModel(), Inputs(x, b, c, s, s), threads);
        });
    }

    private static Case Upsample(int b, int c, int s)
    {
        long n = (long)b * c * s * s;
        var x = RandomArray(2f, n, 7);
        return new Case("Upsample nearest 2x", $"{b}x{c}x{s}x{s}", 20 * n, device =>
        {
            var tx = device.Upload(x, b, c, s, s);
            var ty = device.Allocate(b, c, 2 * s, 2 * s);
            return () => device.UpsampleNearest2x(tx, ty);
        }, threads => OrtPeer.FromBytes(new OnnxGraph().Input("x", b, c, s, s).Output("y", b, c, 2 * s, 2 * s)
            .Initializer("scales", [1f, 1f, 2f, 2f], 4)
            .Node("Resize", ["x", "", "scales"], ["y"]).ToModel(), Inputs(x, b, c, s, s), threads));
    }

    private static Case Transpose(int b, int m, int k)
    {
        long n = (long)b * m * k;
        var x = RandomArray(2f, n, 8);
        return new Case("Transpose", $"{b}x{m}x{k}", 8 * n, device =>
        {
            var tx = device.Upload(x, b, m, k);
            var ty = device.Allocate(b, k, m);
            return () => device.Transpose(tx, ty);
        }, threads => OrtPeer.FromBytes(new OnnxGraph().Input("x", b, m, k).Output("y", b, k, m)
            .Node("Transpose", ["x"], ["y"], ("perm", new long[] { 0, 2, 1 })).ToModel(), Inputs(x, b, m, k), threads));
    }

    private static Case Geglu(int b, int tokens, int width)
    {
        long n = (long)b * tokens * width;
        var x = RandomArray(2f, 2 * n, 9);
        return new Case("GEGLU", $"{b}x{tokens}x{2 * width}", 12 * n, device =>
        {
            var tx = device.Upload(x, b, tokens, 2 * width);
            var ty = device.Allocate(b, tokens, width);
            return () => device.Geglu(tx, ty);
        }, threads => OrtPeer.FromBytes(new OnnxGraph().Input("x", b, tokens, 2 * width).Output("y", b, tokens, width)
            .Initializer("sqrt2", [MathF.Sqrt(2f)]).Initializer("one", [1f]).Initializer("half", [0.5f])
            .Node("Split", ["x"], ["a", "gate"], ("axis", -1L))
            .Node("Div", ["gate", "sqrt2"], ["scaled"]).Node("Erf", ["scaled"], ["erf"]).Node("Add", ["erf", "one"], ["erf1"])
            .Node("Mul", ["gate", "erf1"], ["g2"]).Node("Mul", ["g2", "half"], ["gelu"])
            .Node("Mul", ["a", "gelu"], ["y"]).ToModel(), Inputs(x, b, tokens, 2 * width), threads));
    }
}
