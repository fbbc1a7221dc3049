using Engine.Core.Cpu;

namespace Engine.Core;

/// <summary>
/// Creates devices by kind: <c>cpu</c> (managed SIMD), or the ILGPU kinds <c>cuda</c>, <c>opencl</c>,
/// <c>ilgpu-cpu</c>. With no kind, the <c>ENGINE_DEVICE</c> environment variable decides, else the
/// best available device.
/// </summary>
public static partial class DeviceFactory
{
    /// <summary>Name of the environment variable that overrides the default device.</summary>
    public const string EnvironmentVariable = "ENGINE_DEVICE";

    /// <summary>The device kinds understood by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["cpu", "cuda", "opencl", "ilgpu-cpu"];

    /// <summary>Creates a device of the given kind (or the default when null/empty/"auto").</summary>
    public static Device Create(string? kind = null)
    {
        kind = string.IsNullOrWhiteSpace(kind) || kind == "auto" ? Environment.GetEnvironmentVariable(EnvironmentVariable) : kind;
        kind = kind?.Trim().ToLowerInvariant();
        return kind switch
        {
            null or "" or "auto" => CreateDefault(),
            "cpu" => new CpuDevice(),
            "cuda" or "opencl" or "ilgpu-cpu" => CreateIlgpu(kind),
            _ => throw new ArgumentException($"Unknown device '{kind}'; supported: {string.Join(", ", Kinds)}."),
        };
    }
}
