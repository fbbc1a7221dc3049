using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace Engine.Bench.Infrastructure;

/// <summary>Configurations shared by every suite: the default one for measurements and a smoke one.</summary>
public static class BenchConfig
{
    /// <summary>BenchmarkDotNet's defaults plus the throughput column; jobs come from the command line.</summary>
    public static IConfig Full(string artifacts) =>
        DefaultConfig.Instance.AddColumn(new ThroughputColumn()).WithArtifactsPath(artifacts);

    /// <summary>
    /// Smoke mode: one in-process dry invocation per case (no child build), enough to prove every
    /// benchmark runs and produces a report.
    /// </summary>
    public static IConfig Smoke(string artifacts) =>
        ManualConfig.CreateEmpty()
            .AddColumnProvider(DefaultColumnProviders.Instance)
            .AddLogger(BenchmarkDotNet.Loggers.ConsoleLogger.Default)
            .AddExporter(BenchmarkDotNet.Exporters.Csv.CsvExporter.Default, BenchmarkDotNet.Exporters.MarkdownExporter.GitHub)
            .AddColumn(new ThroughputColumn())
            .AddJob(Job.Dry.WithToolchain(InProcessEmitToolchain.Instance))
            .WithArtifactsPath(artifacts);
}
