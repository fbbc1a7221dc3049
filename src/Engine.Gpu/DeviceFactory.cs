using Engine.Core;
using Engine.Cpu;

namespace Engine.Gpu;

/// <summary>
/// Creates devices by kind: <c>cpu</c> (managed SIMD), or the ILGPU kinds <c>cuda</c>, <c>opencl</c>,
/// <c>ilgpu-cpu</c>. With no kind, the <c>ENGINE_DEVICE</c> environment variable decides, else the
/// best available device. It lives beside the ILGPU backend because choosing needs both backends;
/// a CPU-only program constructs <see cref="CpuDevice"/> directly and never loads ILGPU.
/// </summary>
public static class DeviceFactory
{
    /// <summary>Name of the environment variable that overrides the default device.</summary>
    public const string EnvironmentVariable = "ENGINE_DEVICE";

    /// <summary>The device kinds understood by <see cref="Create"/>.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["cpu", "cuda", "opencl", "ilgpu-cpu"];

    /// <summary>Creates a device of the given kind (or the default when null/empty/"auto"); <c>cuda:N</c> and <c>opencl:N</c> pick device N of the kind.</summary>
    public static Device Create(string? kind = null)
    {
        kind = string.IsNullOrWhiteSpace(kind) || kind == "auto" ? Environment.GetEnvironmentVariable(EnvironmentVariable) : kind;
        kind = kind?.Trim().ToLowerInvariant();
        return kind switch
        {
            null or "" or "auto" => CreateDefault(),
            "cpu" => new CpuDevice(),
            "cuda" or "opencl" or "ilgpu-cpu" => IlgpuDevice.Create(kind),
            _ when DeviceList.Split(kind) is ("cuda" or "opencl", int index) => IlgpuDevice.Create(kind[..kind.IndexOf(':')], index),
            _ => throw new ArgumentException($"Unknown device '{kind}'; supported: {string.Join(", ", Kinds)}."),
        };
    }

    /// <summary>CUDA when a CUDA device is present, else the managed CPU device (the fast path without a GPU).</summary>
    private static Device CreateDefault() => IlgpuDevice.HasCuda() ? IlgpuDevice.Create("cuda") : new CpuDevice();

    /// <summary>
    /// One line per usable device, for <c>engine info</c>: the CPU device, every CUDA / OpenCL
    /// accelerator ILGPU finds, the ILGPU CPU accelerator (kernel tests only), and the default choice.
    /// </summary>
    public static IReadOnlyList<string> Describe()
    {
        var lines = new List<string>();
        using (var cpu = new CpuDevice()) lines.Add($"cpu: {cpu.Name}");
        lines.AddRange(IlgpuDevice.DescribeAccelerators());
        lines.Add("ilgpu-cpu: ILGPU CPU accelerator simulating a GPU (slow; for kernel tests)");
        lines.Add($"default: {(IlgpuDevice.HasCuda() ? "cuda" : "cpu")} (override with {EnvironmentVariable})");
        return lines;
    }
}
