using System.Reflection;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Engine.Bench.Infrastructure;
using Engine.Gpu;

namespace Engine.Bench;

/// <summary>
/// Entry point. <c>--short</c> runs every default suite once in-process as a smoke test and fails
/// unless a results report was written; anything else goes to BenchmarkSwitcher (e.g.
/// <c>--filter *Gemm*</c>). Suites are the classes in this assembly, one file each, grouped by folder
/// (Cpu/, Gpu/). <c>--long</c> adds the long sweeps (category Long); the Gpu/ suites run only where a
/// CUDA device exists. After the run, the engine / ONNX Runtime ratio of every case measured with
/// both providers is printed and written to results/peer-ratios.md. <c>--interleaved</c> [--filter NAME]
/// skips BenchmarkDotNet and measures those ratios with alternating calls (<see cref="InterleavedRunner"/>).
/// <c>--tensor-cores</c> [--out FILE] times the tensor-core kernels on CUDA (<see cref="Gpu.TensorCoreTimings"/>);
/// <c>--half-norms</c> [--out FILE] the half-precision norms against HBM bandwidth (<see cref="Gpu.HalfNormTimings"/>);
/// <c>--norm-ops</c> [--threads N] [--filter TEXT] [--out FILE] the CPU norms, upsampling, transposes and GEGLU
/// against ONNX Runtime by CPU time (<see cref="Cpu.NormOpTimings"/>);
/// <c>--gemm-sd-shapes</c> [--threads N] [--rounds R] [--filter TEXT[,TEXT...]] the CPU GEMM at the SD 1.5 shapes beside ORT
/// (<see cref="Cpu.GemmSdShapesTimings"/>); <c>--kernel-probe</c> the GEMM's packing against its micro-kernel;
/// <c>--gemm-breakdown</c> [--reps R] the UNet's Linear shapes split into packing and the product on 1 and 2 threads
/// (<see cref="Cpu.GemmBreakdown"/>); <c>--projection-fusion</c> [--threads N] [--rounds R] separate attention projections
/// against one product over the concatenated weights (<see cref="Cpu.ProjectionFusionTimings"/>);
/// <c>--conv-timings</c> [--threads 1,2] [--rounds R] [--shapes LIST] [--weights f16] [--algos auto,direct,unstacked,winograd,gemm,ort]
/// [--out FILE] the SD 1.5 3x3 convolutions (stride 1 and 2, f32 or f16 weights) with every CPU algorithm and an ONNX Runtime
/// Conv, alternating call by call (<see cref="Cpu.ConvTimings"/>);
/// <c>--geglu-projection</c> the fused GEGLU projection against the separate Linear and Geglu (<see cref="Cpu.GegluProjectionTimings"/>);
/// <c>--attention</c> [--threads N] [--rounds R] [--filter TEXT] [--phases] the CPU attention at the SD shapes against
/// the previous kernel and ONNX Runtime (<see cref="Cpu.AttentionTimings"/>).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string artifacts = ArtifactsPath(ref args);
        if (args.Contains("--tensor-cores"))
        {
            int o = Array.IndexOf(args, "--out");
            return Gpu.TensorCoreTimings.Run(o >= 0 && o + 1 < args.Length ? args[o + 1] : null);
        }
        if (args.Contains("--model-step")) return Gpu.ModelStepTimings.Run(args);
        if (args.Contains("--kernel-probe")) return Cpu.KernelProbe.Run();
        if (args.Contains("--gemm-breakdown")) return Cpu.GemmBreakdown.Run(args);
        if (args.Contains("--gemm-sd-shapes")) return Cpu.GemmSdShapesTimings.Run(args);
        if (args.Contains("--projection-fusion")) return Cpu.ProjectionFusionTimings.Run(args);
        if (args.Contains("--conv-timings")) return Cpu.ConvTimings.Run(args);
        if (args.Contains("--attention")) return Cpu.AttentionTimings.Run(args);
        if (args.Contains("--half-norms"))
        {
            int o = Array.IndexOf(args, "--out");
            return Gpu.HalfNormTimings.Run(o >= 0 && o + 1 < args.Length ? args[o + 1] : null);
        }
        if (args.Contains("--geglu-projection")) return Cpu.GegluProjectionTimings.Run(args);
        if (args.Contains("--norm-ops"))
        {
            string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
            return Cpu.NormOpTimings.Run(int.Parse(Arg("--threads") ?? "0"), Arg("--filter"), Arg("--out"));
        }
        bool includeLong = args.Contains("--long");
        args = args.Where(a => a != "--long").ToArray();
        if (args.Contains("--interleaved"))
        {
            int f = Array.IndexOf(args, "--filter");
            string? filter = f >= 0 && f + 1 < args.Length ? args[f + 1].Trim('*') : null;
            string load = LoadAverage();
            var rows = InterleavedRunner.Run(SuiteTypes(includeLong), filter, secondsPerCase: 3);
            PeerRatios.Write(rows, artifacts, $"Interleaved run {DateTime.Now:yyyy-MM-dd HH:mm} on {Environment.ProcessorCount} cores (engine and ORT calls alternated, medians); load average before: {load}, after: {LoadAverage()}.");
            return rows.Count > 0 ? 0 : 1;
        }
        var switcher = BenchmarkSwitcher.FromTypes(SuiteTypes(includeLong));
        if (args.Contains("--short"))
        {
            var rest = args.Where(a => a != "--short").ToArray();
            if (rest.Length == 0) rest = ["--filter", "*"];
            var summaries = switcher.Run(rest, BenchConfig.Smoke(artifacts)).ToList();
            PeerRatios.Report(summaries, artifacts,
                "Smoke run: one unwarmed dry invocation per case, so these ratios only show that both sides ran; they are not measurements.");
            return CheckResults(artifacts, summaries);
        }
        var all = switcher.Run(args, BenchConfig.Full(artifacts)).ToList();
        PeerRatios.Report(all, artifacts, $"Measured {DateTime.Now:yyyy-MM-dd HH:mm} on {Environment.ProcessorCount} cores; load average before the run: {LoadAverage()}.");
        return all.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }

    /// <summary>The suites to offer: Long ones only on request, Gpu ones only with a CUDA device.</summary>
    private static Type[] SuiteTypes(bool includeLong)
    {
        var suites = typeof(Program).Assembly.GetTypes()
            .Where(t => t is { IsClass: true, IsAbstract: false, IsPublic: true } && t.GetMethods().Any(m => m.GetCustomAttribute<BenchmarkAttribute>() is not null))
            .ToList();
        bool InCategory(Type t, string category) => t.GetCustomAttribute<BenchmarkCategoryAttribute>()?.Categories.Contains(category) == true;
        if (!includeLong) suites.RemoveAll(t => InCategory(t, BenchCategories.Long));
        if (suites.Any(t => InCategory(t, BenchCategories.Gpu)) && !IlgpuDevice.HasCuda())
        {
            Console.WriteLine("GPU suites skipped: no CUDA device found.");
            suites.RemoveAll(t => InCategory(t, BenchCategories.Gpu));
        }
        return [.. suites];
    }

    /// <summary>The 1/5/15-minute load averages (Linux), for the record: the benchmark machine is shared.</summary>
    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "unknown";

    /// <summary>Takes <c>--artifacts DIR</c> out of the arguments (default BenchmarkDotNet.Artifacts).</summary>
    private static string ArtifactsPath(ref string[] args)
    {
        int i = Array.IndexOf(args, "--artifacts");
        if (i < 0 || i + 1 >= args.Length) return Path.GetFullPath("BenchmarkDotNet.Artifacts");
        string path = Path.GetFullPath(args[i + 1]);
        args = args.Take(i).Concat(args.Skip(i + 2)).ToArray();
        return path;
    }

    /// <summary>
    /// BenchmarkDotNet exits 0 even when it ran nothing (a Debug build, a filter that matches
    /// nothing), so the smoke run checks that reports exist and every case produced a measurement.
    /// </summary>
    private static int CheckResults(string artifacts, List<BenchmarkDotNet.Reports.Summary> summaries)
    {
        var results = Path.Combine(artifacts, "results");
        var reports = Directory.Exists(results) ? Directory.GetFiles(results, "*-report.csv") : [];
        int cases = summaries.Sum(s => s.BenchmarksCases.Length);
        int failed = summaries.Sum(s => s.Reports.Count(r => !r.Success || r.ResultStatistics is null));
        if (reports.Length == 0 || cases == 0 || failed > 0 || summaries.Any(s => s.HasCriticalValidationErrors))
        {
            Console.Error.WriteLine($"Benchmark smoke run failed: {reports.Length} reports in {results}, {cases} cases, {failed} without results.");
            return 1;
        }
        Console.WriteLine($"Benchmark smoke run: {cases} cases, {reports.Length} reports in {results}.");
        return 0;
    }
}
