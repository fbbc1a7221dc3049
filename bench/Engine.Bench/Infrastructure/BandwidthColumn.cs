using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Engine.Bench.Gpu;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// For memory-bound GPU suites (work counted in bytes): the achieved bandwidth as a share of the GPU's
/// nominal HBM bandwidth (<see cref="GpuInfo"/>; known only when the suite ran in-process).
/// </summary>
public sealed class BandwidthColumn : IColumn
{
    public string Id => nameof(BandwidthColumn);
    public string ColumnName => "% of HBM";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 1;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Bytes read + written per second over the GPU's nominal memory bandwidth (H100 3.35 TB/s, H200 4.8 TB/s)";

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public bool IsAvailable(Summary summary) => GpuInfo.PeakBandwidth is not null;

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || stats.Mean <= 0 || GpuInfo.PeakBandwidth is not { } peak) return "-";
        if (!typeof(GpuBenchmark).IsAssignableFrom(benchmarkCase.Descriptor.Type)) return "-";
        var work = ThroughputColumn.WorkOf(benchmarkCase);
        if (work is not { Unit: "B" }) return "-";
        return $"{100 * work.Value.Amount / (stats.Mean * 1e-9) / peak:F0}%";
    }
}
