using BenchmarkDotNet.Attributes;
using Engine.Bench.Infrastructure;
using Engine.Core;
using Engine.Gpu;

namespace Engine.Bench.Gpu;

/// <summary>
/// Base of the CUDA suites: the ILGPU device on the first CUDA GPU. Each benchmark ends with
/// <see cref="Device.Synchronize"/> so the time covers the kernels, not just their launch. The entry
/// point leaves these suites out when no CUDA device exists.
/// </summary>
[BenchmarkCategory(BenchCategories.Gpu)]
public abstract class GpuBenchmark : DeviceBenchmark
{
    protected override Device CreateDevice()
    {
        var device = IlgpuDevice.Create("cuda");
        GpuInfo.Name = device.Name;
        return device;
    }
}
