namespace Engine.Core;

public static partial class DeviceFactory
{
    // The ILGPU device arrives with kernels/; until then the CPU device is the only one.
    private static Device CreateDefault() => new Cpu.CpuDevice();

    private static Device CreateIlgpu(string kind) =>
        throw new PlatformNotSupportedException($"Device '{kind}' needs the ILGPU backend, which this build does not include.");
}
