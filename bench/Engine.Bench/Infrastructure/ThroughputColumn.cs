using System.Reflection;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// Reports GFLOP/s or GB/s for benchmarks implementing <see cref="IThroughputBenchmark"/>: the work of
/// one invocation divided by the measured mean time.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    public string Id => nameof(ThroughputColumn);
    public string ColumnName => "Throughput";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => false;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Work per second: GFLOP/s (2 flops per multiply-add), GB/s (bytes read + written) or items/s (e.g. images/s)";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => true;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Mean <= 0) return "-";
        var work = WorkOf(benchmarkCase);
        if (work is null) return "-";
        double perSecond = work.Value.Amount / (stats.Mean * 1e-9);
        return work.Value.Unit switch
        {
            "FLOP" => $"{perSecond / 1e9:F1} GFLOP/s",
            "B" => $"{perSecond / 1e9:F2} GB/s",
            var unit => $"{perSecond:F1} {unit}/s",
        };
    }

    /// <summary>Instantiates the benchmark with the case's parameters and asks it for its work.</summary>
    public static (double Amount, string Unit)? WorkOf(BenchmarkCase benchmarkCase)
    {
        var type = benchmarkCase.Descriptor.Type;
        if (!typeof(IThroughputBenchmark).IsAssignableFrom(type)) return null;
        var instance = (IThroughputBenchmark)Activator.CreateInstance(type)!;
        foreach (var p in benchmarkCase.Parameters.Items)
        {
            const BindingFlags Flags = BindingFlags.Public | BindingFlags.Instance;
            if (type.GetProperty(p.Name, Flags) is { CanWrite: true } prop) prop.SetValue(instance, p.Value);
            else type.GetField(p.Name, Flags)?.SetValue(instance, p.Value);
        }
        return instance.WorkPerInvocation();
    }
}
