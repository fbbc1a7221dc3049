namespace Engine.Bench.Infrastructure;

/// <summary>
/// A benchmark that knows how much work one invocation does, from its parameters alone (the
/// throughput column builds a fresh instance with the case's parameters, without running setup).
/// </summary>
public interface IThroughputBenchmark
{
    /// <summary>Work per invocation: an amount and its unit ("FLOP", "B" for bytes moved, or a countable item such as "images").</summary>
    (double Amount, string Unit) WorkPerInvocation();
}
