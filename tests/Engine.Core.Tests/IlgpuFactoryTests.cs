using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>Device selection and listing with the ILGPU backend present.</summary>
public class IlgpuFactoryTests
{
    [Test]
    public void DescribeListsCpuAndIlgpuCpu()
    {
        var lines = DeviceFactory.Describe();
        Assert.That(lines, Has.Some.StartsWith("cpu: "));
        Assert.That(lines, Has.Some.StartsWith("ilgpu-cpu: "));
        Assert.That(lines, Has.Some.StartsWith("default: "));
    }

    [Test]
    public void CudaRequestWithoutCudaNamesTheKind()
    {
        if (IlgpuDevice.HasCuda()) Assert.Ignore("A CUDA device is present, so the missing-device error cannot be observed here.");
        var e = Assert.Throws<PlatformNotSupportedException>(() => DeviceFactory.Create("cuda"));
        Assert.That(e!.Message, Does.StartWith("cuda requested"));
    }

    [Test]
    public void DefaultIsCudaOrTheCpuDevice()
    {
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable(DeviceFactory.EnvironmentVariable)))
            Assert.Ignore($"{DeviceFactory.EnvironmentVariable} is set and overrides the default device.");
        using var device = DeviceFactory.Create("auto");
        Assert.That(device.Kind, Is.EqualTo(IlgpuDevice.HasCuda() ? "cuda" : "cpu"));
    }

    [Test]
    public void IlgpuCpuDeviceReportsItsKind()
    {
        using var device = DeviceFactory.Create("ilgpu-cpu");
        Assert.That(device.Kind, Is.EqualTo("ilgpu-cpu"));
        Assert.That(device.Name, Does.StartWith("ilgpu-cpu: "));
    }
}
