namespace Engine.Sampling.Rng;

/// <summary>Which random stream a seed drives.</summary>
public enum RngKind
{
    /// <summary>The engine's counter-based Philox stream keyed by (seed, sample index, draw): batch-invariant. The default.</summary>
    Philox,

    /// <summary>PyTorch's CPU generator (<see cref="TorchCpuGenerator"/>), consumed in diffusers' order: the same noise diffusers draws from that seed.</summary>
    Torch,
}

/// <summary>Names of <see cref="RngKind"/> on the command line, in job files and sidecars.</summary>
public static class RngKinds
{
    /// <summary>The accepted names, comma-separated, for messages and help.</summary>
    public const string Names = "philox, torch";

    /// <summary>The lower-case name of <paramref name="kind"/> (<c>philox</c>, <c>torch</c>).</summary>
    public static string Name(this RngKind kind) => kind switch
    {
        RngKind.Philox => "philox",
        RngKind.Torch => "torch",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown generator"),
    };

    /// <summary>Parses a name (case-insensitive); null when it is not one.</summary>
    public static RngKind? TryParse(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "philox" => RngKind.Philox,
        "torch" => RngKind.Torch,
        _ => null,
    };
}
