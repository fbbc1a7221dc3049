namespace Engine.Bench.Infrastructure;

/// <summary>Benchmark categories the entry point selects on.</summary>
public static class BenchCategories
{
    /// <summary>Suites that take minutes (large sweeps); run with <c>--long</c> or an explicit filter.</summary>
    public const string Long = "Long";

    /// <summary>Suites that need a CUDA device; skipped with a message when none exists.</summary>
    public const string Gpu = "Gpu";
}
