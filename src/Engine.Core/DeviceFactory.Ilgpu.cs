using Engine.Core.Cpu;
using Engine.Core.Ilgpu;

namespace Engine.Core;

public static partial class DeviceFactory
{
    /// <summary>CUDA when a CUDA device is present, else the managed CPU device (the fast path without a GPU).</summary>
    private static Device CreateDefault() => IlgpuDevice.HasCuda() ? IlgpuDevice.Create("cuda") : new CpuDevice();

    private static Device CreateIlgpu(string kind) => IlgpuDevice.Create(kind);

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
