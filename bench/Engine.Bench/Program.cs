using BenchmarkDotNet.Running;
using Engine.Bench.Infrastructure;

namespace Engine.Bench;

/// <summary>
/// Entry point. <c>--short</c> runs every suite once in-process as a smoke test and fails unless a
/// results report was written; anything else goes to BenchmarkSwitcher (e.g. <c>--filter *Gemm*</c>).
/// Suites are the classes in this assembly, one file each, grouped by folder (Cpu/, ...).
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        string artifacts = ArtifactsPath(ref args);
        if (args.Contains("--short"))
        {
            var rest = args.Where(a => a != "--short").ToArray();
            if (rest.Length == 0) rest = ["--filter", "*"];
            var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(rest, BenchConfig.Smoke(artifacts)).ToList();
            return CheckResults(artifacts, summaries);
        }
        var all = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, BenchConfig.Full(artifacts)).ToList();
        return all.Any(s => s.HasCriticalValidationErrors) ? 1 : 0;
    }

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
