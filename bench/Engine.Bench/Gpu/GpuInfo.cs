namespace Engine.Bench.Gpu;

/// <summary>The GPU the suites ran on and its nominal memory bandwidth, for the HBM column.</summary>
public static class GpuInfo
{
    /// <summary>The device name as ILGPU reports it (set by the first GPU suite's setup).</summary>
    public static string? Name { get; set; }

    /// <summary>Nominal HBM bandwidth in bytes/s of the known data-centre GPUs, else null.</summary>
    public static double? PeakBandwidth => Name switch
    {
        null => null,
        _ when Name.Contains("H200", StringComparison.OrdinalIgnoreCase) => 4.8e12,
        _ when Name.Contains("H100", StringComparison.OrdinalIgnoreCase) => 3.35e12,
        _ when Name.Contains("A100", StringComparison.OrdinalIgnoreCase) => 2.0e12,
        _ => null,
    };
}
