using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Text;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Cpu;

/// <summary>
/// <c>--attention [--threads N] [--rounds R] [--filter TEXT] [--phases] [--out FILE]</c>: the CPU fused attention at
/// the SD 1.5 UNet shapes (batch 2, 8 heads; self-attention at L = 4096 / 1024 / 256 / 64 with d = 40 / 80 / 160 / 160,
/// cross-attention over 77 keys), the device's kernel alternated in one process with the kernel before the
/// d-padded tiles (<see cref="BaselineAttention"/>) and ONNX Runtime's exported attention subgraph (the batch folded
/// into 16 heads), at 1 and 2 threads (or N). Each round runs a block of calls of each side, order rotated per round;
/// samples are per-call process CPU time (getrusage) and wall time. <c>--phases</c> first replays one head of the
/// baseline on one thread, phase by phase (packing, S^T = K Q^T, max / exp / sum, rescale, O^T += V^T P^T, output),
/// to show where its time goes.
/// </summary>
internal static unsafe class AttentionTimings
{
    private sealed record Shape(string Kind, int Lq, int Lk, int D)
    {
        public string Name => Kind == "self" ? $"self L{Lq} d{D}" : $"cross L{Lq} Lk{Lk} d{D}";
        public double Flops => 4.0 * Batch * Heads * Lq * Lk * D;
    }

    private const int Batch = 2, Heads = 8;

    private static readonly Shape[] Shapes =
    [
        new("self", 4096, 4096, 40), new("self", 1024, 1024, 80), new("self", 256, 256, 160), new("self", 64, 64, 160),
        new("cross", 4096, 77, 40), new("cross", 1024, 77, 80), new("cross", 256, 77, 160), new("cross", 64, 77, 160),
    ];

    /// <summary>Runs the timings; returns the exit code.</summary>
    public static int Run(string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        int threadsArg = int.Parse(Arg("--threads") ?? "0", CultureInfo.InvariantCulture);
        int rounds = int.Parse(Arg("--rounds") ?? "5", CultureInfo.InvariantCulture);
        string? filter = Arg("--filter"), outFile = Arg("--out");
        if (args.Contains("--phases")) Phases();
        string load = File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";
        var table = new StringBuilder();
        table.AppendLine(CultureInfo.InvariantCulture, $"CPU attention, batch {Batch}, {Heads} heads, {rounds} rounds, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, load average before: {load}");
        table.AppendLine();
        table.AppendLine("| shape | threads | engine CPU ms | baseline CPU ms | ORT CPU ms | engine / baseline | engine / ORT | engine GFLOP/s (wall) | baseline GFLOP/s (wall) | ORT GFLOP/s (wall) |");
        table.AppendLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        Console.Write(table.ToString());
        int[] threadCounts = threadsArg > 0 ? [threadsArg] : [1, 2];
        foreach (int threads in threadCounts)
        {
            using var device = new CpuDevice(threads);
            foreach (var s in Shapes)
            {
                if (filter is not null && !s.Name.Contains(filter, StringComparison.OrdinalIgnoreCase)) continue;
                string row = Case(device, threads, s, rounds);
                Console.WriteLine(row);
                table.AppendLine(row);
            }
        }
        if (outFile is not null) File.WriteAllText(outFile, table.ToString());
        return 0;
    }

    private static string Case(CpuDevice device, int threads, Shape s, int rounds)
    {
        int width = Heads * s.D;
        float[] q = RandomArray(2f, (long)Batch * s.Lq * width, 1), k = RandomArray(2f, (long)Batch * s.Lk * width, 2), v = RandomArray(1f, (long)Batch * s.Lk * width, 3);
        using var tq = device.Upload(q, Batch, s.Lq, width);
        using var tk = device.Upload(k, Batch, s.Lk, width);
        using var tv = device.Upload(v, Batch, s.Lk, width);
        using var to = device.Allocate(Batch, s.Lq, width);
        float scale = 1f / MathF.Sqrt(s.D);
        float* bq = Copy(q), bk = Copy(k), bv = Copy(v), bo = (float*)NativeMemory.AlignedAlloc((nuint)((long)Batch * s.Lq * width * 4), 64);
        Action engine = () => device.Attention(tq, tk, tv, to, Heads, scale);
        Action baseline = () => BaselineAttention.Run(bq, bk, bv, bo, Batch, s.Lq, s.Lk, width, Heads, scale, device.Parallelism);
        // ORT's graph is [1, h, L, d]: the batch folds into the heads (same work); its inputs are the
        // head-major layout of the same values.
        var inputs = new Dictionary<string, (Array, long[])>
        {
            ["q"] = (HeadMajor(q, s.Lq, s.D), [1, Batch * Heads, s.Lq, s.D]),
            ["k"] = (HeadMajor(k, s.Lk, s.D), [1, Batch * Heads, s.Lk, s.D]),
            ["v"] = (HeadMajor(v, s.Lk, s.D), [1, Batch * Heads, s.Lk, s.D]),
        };
        using var peer = OrtPeer.FromBytes(AttentionPeer.Model(Batch * Heads, s.Lq, s.Lk, s.D), inputs, threads);
        engine(); baseline();
        // Both kernels must agree before their times mean anything.
        float diff = TensorPrimitives.MaxMagnitude(Subtract(to.ToArray(), new ReadOnlySpan<float>(bo, Batch * s.Lq * width)));
        if (diff > 1e-4f) throw new InvalidOperationException($"{s.Name}: engine and baseline attention differ by {diff}.");
        var sides = new[] { engine, baseline, peer.Run };
        var cpu = new List<double>[3]; var wall = new List<double>[3];
        for (int i = 0; i < 3; i++) { cpu[i] = []; wall[i] = []; }
        // Warm-up to the optimised JIT tier, then size blocks to ~0.2 s.
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 30 && sw.Elapsed.TotalSeconds < 1.5; i++) { engine(); baseline(); }
        peer.Run();
        sw.Restart(); engine();
        int calls = (int)Math.Clamp(0.2 / Math.Max(sw.Elapsed.TotalSeconds, 1e-6), 2, 400);
        for (int r = 0; r < rounds; r++)
            for (int j = 0; j < 3; j++)
            {
                int side = (r + j) % 3;
                Block(sides[side], calls, cpu[side], wall[side]);
            }
        NativeMemory.AlignedFree(bq); NativeMemory.AlignedFree(bk); NativeMemory.AlignedFree(bv); NativeMemory.AlignedFree(bo);
        double Gf(List<double> w) => s.Flops / Median(w) / 1e6;
        return string.Create(CultureInfo.InvariantCulture,
            $"| {s.Name} | {threads} | {Format(cpu[0])} | {Format(cpu[1])} | {Format(cpu[2])} | {Median(cpu[0]) / Median(cpu[1]):F2} | {Median(cpu[0]) / Median(cpu[2]):F2} | {Gf(wall[0]):F0} | {Gf(wall[1]):F0} | {Gf(wall[2]):F0} |");
    }

    /// <summary>
    /// One head of the self-attention shapes through the baseline's pieces on the calling thread, timing each phase
    /// per tile by the thread's CPU time; prints milliseconds per head and GFLOP/s of the whole.
    /// </summary>
    private static void Phases()
    {
        // The first sweep only brings the methods to their optimised JIT tier.
        for (int sweep = 0; sweep < 2; sweep++)
        {
            Phases(fused: false, print: sweep == 1);
            if (AttentionScores.Supported) Phases(fused: true, print: sweep == 1);
            if (sweep == 0) Thread.Sleep(200);
        }
    }

    private static void Phases(bool fused, bool print)
    {
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols, qbRows = BaselineAttention.QueryBlock;
        foreach (var s in Shapes)
        {
            if (s.Kind != "self" || s.Lq < 256) continue;
            int lq = s.Lq, lk = s.Lk, d = s.D, width = d;
            float* q = Copy(RandomArray(2f, (long)lq * d, 1)), k = Copy(RandomArray(2f, (long)lk * d, 2)), v = Copy(RandomArray(1f, (long)lk * d, 3));
            float* o = (float*)NativeMemory.AlignedAlloc((nuint)((long)lq * d * 4), 64);
            int keyTile = lk <= BaselineAttention.WholeRowKeys ? lk : BaselineAttention.FlashKeyTile / mr * mr;
            int tileRows = (keyTile + mr - 1) / mr * mr;
            long kPacked = ((long)(lk + mr - 1) / mr * mr * d + 15) / 16 * 16, vPacked = ((long)(d + mr - 1) / mr * mr * lk + 15) / 16 * 16;
            float* packed = (float*)NativeMemory.AlignedAlloc((nuint)((kPacked + vPacked) * 4), 64);
            long qPack = (long)qbRows * d, scores = (long)qbRows * tileRows, accRows = (d + mr - 1) / mr * mr;
            float* scratch = (float*)NativeMemory.AlignedAlloc((nuint)((qPack + scores + 3 * qbRows + accRows * qbRows + 16) * 4), 64);
            float* packedQ = scratch, st = packedQ + qPack, max = st + scores, sum = max + qbRows, corr = sum + qbRows, acc = corr + qbRows;
            var t = new double[6];
            string[] names = ["pack K,V", "pack Q", "S=KQ^T", "max/exp/sum", "rescale", "O+=V^T P^T + store"];
            for (int rep = 0; rep < 4; rep++)
            {
                if (rep == 1) Array.Clear(t);
                long t0 = ThreadCpuNanoseconds();
                int[] states = new int[1];
                BaselineAttention.PackHead(states, 0, k, v, lk, d, width, 0.125f * 1.44269504f, packed, packed + kPacked);
                Lap(ref t0, t, 0);
                for (int i0 = 0; i0 < lq; i0 += qbRows)
                {
                    new Span<float>(max, qbRows).Fill(float.NegativeInfinity);
                    new Span<float>(sum, qbRows).Clear();
                    BaselineAttention.PackQueriesTransposed(q + (long)i0 * d, qbRows, d, width, packedQ);
                    Lap(ref t0, t, 1);
                    for (int j0 = 0; j0 < lk; j0 += keyTile)
                    {
                        int cols = Math.Min(keyTile, lk - j0), keyRows = (cols + mr - 1) / mr * mr;
                        if (fused)
                        {
                            new Span<float>(corr, qbRows).Fill(1f);
                            for (int jp = 0; jp < qbRows / nr; jp++)
                                AttentionScores.Panel(packed + (long)j0 * d, packedQ + (long)jp * nr * d, d, cols, st + (long)jp * nr * tileRows, max + jp * nr, sum + jp * nr, corr + jp * nr);
                            Lap(ref t0, t, 3);
                        }
                        else
                        for (int jp = 0; jp < qbRows / nr; jp++)
                        {
                            float* panel = st + (long)jp * nr * tileRows;
                            Gemm.RunPacked(keyRows, nr, d, packed + (long)j0 * d, (long)mr * d, packedQ + (long)jp * nr * d, (long)nr * d, panel, nr, accumulate: false);
                            Lap(ref t0, t, 2);
                            BaselineAttention.PanelMaxExpSum(panel, cols, max + jp * nr, sum + jp * nr, j0 == 0 ? null : corr + jp * nr);
                            Lap(ref t0, t, 3);
                        }
                        if (j0 > 0 && (!fused || new ReadOnlySpan<float>(corr, qbRows).ContainsAnyExcept(1f)))
                            for (int r = 0; r < d; r++)
                            {
                                var row = new Span<float>(acc + (long)r * qbRows, qbRows);
                                TensorPrimitives.Multiply(row, new ReadOnlySpan<float>(corr, qbRows), row);
                            }
                        Lap(ref t0, t, 4);
                        Gemm.RunPacked(d, qbRows, cols, packed + kPacked + (long)j0 * mr, (long)mr * lk, st, (long)nr * tileRows, acc, qbRows, accumulate: j0 > 0);
                        Lap(ref t0, t, 5);
                    }
                    for (int j = 0; j < qbRows; j++) sum[j] = 1f / sum[j];
                    BaselineAttention.StoreOutputTransposed(acc, sum, qbRows, d, o + (long)i0 * d, width);
                    Lap(ref t0, t, 5);
                }
            }
            double total = t.Sum() / 3;
            var line = new StringBuilder(string.Create(CultureInfo.InvariantCulture, $"phases ({(fused ? "fused S+softmax" : "baseline")}, 1 thread, one head) {s.Name}: {total * 1e3:F2} ms, {4.0 * lq * lk * d / total / 1e9:F1} GFLOP/s;"));
            for (int i = 0; i < t.Length; i++) line.Append(CultureInfo.InvariantCulture, $" {names[i]} {t[i] / 3 * 1e3:F2} ms ({t[i] / 3 / total:P0})");
            if (print) Console.WriteLine(line);
            foreach (var p in new[] { q, k, v, o, packed, scratch }) NativeMemory.AlignedFree(p);
        }
    }

    /// <summary>Adds the calling thread's CPU time since <paramref name="t0"/> to the phase (robust to the other processes of a loaded machine).</summary>
    private static void Lap(ref long t0, double[] t, int phase)
    {
        long now = ThreadCpuNanoseconds();
        t[phase] += (now - t0) * 1e-9;
        t0 = now;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec { public long Seconds, Nanoseconds; }

    [DllImport("libc")]
    private static extern int clock_gettime(int clock, out TimeSpec time);

    /// <summary>CLOCK_THREAD_CPUTIME_ID on Linux; wall time elsewhere.</summary>
    private static long ThreadCpuNanoseconds()
    {
        if (!OperatingSystem.IsLinux()) return (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));
        clock_gettime(3, out var t);
        return t.Seconds * 1_000_000_000 + t.Nanoseconds;
    }

    /// <summary>[B, L, H*d] to [B*H, L, d].</summary>
    private static float[] HeadMajor(float[] x, int l, int d)
    {
        var y = new float[x.Length];
        for (int b = 0; b < Batch; b++)
            for (int i = 0; i < l; i++)
                for (int h = 0; h < Heads; h++)
                    Array.Copy(x, ((long)(b * l + i) * Heads + h) * d, y, ((long)(b * Heads + h) * l + i) * d, d);
        return y;
    }

    private static float[] Subtract(float[] a, ReadOnlySpan<float> b)
    {
        var r = new float[a.Length];
        TensorPrimitives.Subtract(a, b, r);
        return r;
    }

    private static float* Copy(float[] x)
    {
        float* p = (float*)NativeMemory.AlignedAlloc((nuint)(x.LongLength * 4), 64);
        x.CopyTo(new Span<float>(p, x.Length));
        return p;
    }

    private static void Block(Action op, int calls, List<double> cpu, List<double> wall)
    {
        double c0 = ProcessCpu.Seconds();
        long t0 = Stopwatch.GetTimestamp();
        for (int i = 0; i < calls; i++) op();
        wall.Add((Stopwatch.GetTimestamp() - t0) * 1e3 / Stopwatch.Frequency / calls);
        cpu.Add((ProcessCpu.Seconds() - c0) * 1e3 / calls);
    }

    private static string Format(List<double> ms) => string.Create(CultureInfo.InvariantCulture, $"{Median(ms):F3} [{ms.Min():F3}-{ms.Max():F3}]");

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

}
