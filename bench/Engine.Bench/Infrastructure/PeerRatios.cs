using System.Globalization;
using System.Text;
using BenchmarkDotNet.Reports;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// The engine / ONNX Runtime table printed after a run: for every case of a <see cref="PeerBenchmark"/>
/// suite measured with both providers, the two mean times and the engine's speed relative to ORT
/// (ORT time / engine time: 1.0 is parity, above 1 the engine is faster). Also written as
/// results/peer-ratios.md beside BenchmarkDotNet's reports.
/// </summary>
public static class PeerRatios
{
    public sealed record Row(string Suite, string Method, string Case, double EngineNs, double OrtNs)
    {
        public double Ratio => OrtNs / EngineNs;
    }

    /// <summary>Pairs the engine and ORT cases that share suite, method and every other parameter.</summary>
    public static List<Row> Collect(IEnumerable<Summary> summaries)
    {
        var rows = new List<Row>();
        foreach (var summary in summaries)
        {
            var measured = summary.Reports
                .Where(r => r.Success && r.ResultStatistics is not null && r.BenchmarkCase.HasParameters
                            && r.BenchmarkCase.Parameters.Items.Any(p => p.Name == nameof(PeerBenchmark.Provider)))
                .Select(r => (Report: r, Provider: (string)r.BenchmarkCase.Parameters[nameof(PeerBenchmark.Provider)],
                              Key: (r.BenchmarkCase.Descriptor.Type.Name, r.BenchmarkCase.Descriptor.WorkloadMethod.Name, CaseName(r))));
            foreach (var group in measured.GroupBy(m => m.Key))
            {
                var engine = group.FirstOrDefault(m => m.Provider == PeerBenchmark.EngineProvider).Report;
                var ort = group.FirstOrDefault(m => m.Provider == PeerBenchmark.OrtProvider).Report;
                if (engine is null || ort is null) continue;
                rows.Add(new Row(group.Key.Item1, group.Key.Item2, group.Key.Item3, engine.ResultStatistics!.Median, ort.ResultStatistics!.Median));
            }
        }
        return rows;
    }

    private static string CaseName(BenchmarkReport r) =>
        string.Join(", ", r.BenchmarkCase.Parameters.Items.Where(p => p.Name != nameof(PeerBenchmark.Provider)).Select(p => $"{p.Name}={p.Value}"));

    /// <summary>The table as GitHub markdown, with a note line on top.</summary>
    public static string Markdown(IReadOnlyList<Row> rows, string note)
    {
        var sb = new StringBuilder();
        sb.AppendLine(note).AppendLine();
        sb.AppendLine("| suite | method | case | engine-cpu median | ORT median | engine/ORT speed |");
        sb.AppendLine("|---|---|---|---:|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Suite} | {r.Method} | {r.Case} | {Time(r.EngineNs)} | {Time(r.OrtNs)} | {r.Ratio:F2}x |");
        return sb.ToString();
    }

    private static string Time(double ns) => ns >= 1e6
        ? (ns / 1e6).ToString("F2", CultureInfo.InvariantCulture) + " ms"
        : (ns / 1e3).ToString("F1", CultureInfo.InvariantCulture) + " us";

    /// <summary>Prints the table and writes it to results/peer-ratios.md; nothing when no pair was measured.</summary>
    public static void Report(IEnumerable<Summary> summaries, string artifacts, string note) => Write(Collect(summaries), artifacts, note);

    /// <summary>Prints rows and writes them to results/peer-ratios.md; nothing when there are none.</summary>
    public static void Write(IReadOnlyList<Row> rows, string artifacts, string note)
    {
        if (rows.Count == 0) return;
        var text = Markdown(rows, note);
        Console.WriteLine();
        Console.WriteLine("Engine vs ONNX Runtime (medians; ratio = ORT time / engine time):");
        Console.WriteLine(text);
        var results = Path.Combine(artifacts, "results");
        Directory.CreateDirectory(results);
        File.WriteAllText(Path.Combine(results, "peer-ratios.md"), text);
    }
}
