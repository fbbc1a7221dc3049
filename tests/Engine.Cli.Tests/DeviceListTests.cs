using Engine.Gpu;

namespace Engine.Cli.Tests;

/// <summary>Device lists of <c>--device</c>: kinds, <c>cuda:N</c>, <c>cuda:all</c> expanded by the device count, repeats and bad entries.</summary>
public class DeviceListTests
{
    private static int TwoGpus(string kind) => kind == "cuda" ? 2 : 0;

    [TestCase("cpu", new[] { "cpu" })]
    [TestCase("CUDA:1", new[] { "cuda:1" })]
    [TestCase("cuda:0, cuda:1", new[] { "cuda:0", "cuda:1" })]
    [TestCase("cuda:all", new[] { "cuda:0", "cuda:1" })]
    [TestCase("cpu,cpu,ilgpu-cpu", new[] { "cpu", "cpu", "ilgpu-cpu" })]
    public void ParsesEntries(string text, string[] expected) =>
        Assert.That(DeviceList.Parse(text, TwoGpus), Is.EqualTo(expected));

    [TestCase("tpu", "unknown device 'tpu'")]
    [TestCase("cuda:x", "unknown device 'cuda:x'")]
    [TestCase("cpu:1", "unknown device 'cpu:1'")]
    [TestCase("cuda:0,,cuda:1", "an empty entry")]
    [TestCase("cuda:1,cuda:1", "device cuda:1 is listed twice")]
    [TestCase("opencl:all", "no opencl device was found")]
    [TestCase("cpu:all", "only cuda:all and opencl:all")]
    public void BadEntriesAreNamed(string text, string message) =>
        Assert.That(() => DeviceList.Parse(text, TwoGpus), Throws.TypeOf<FormatException>().With.Message.Contains(message));

    [Test]
    public void IndexedDevicesAreKnownKinds()
    {
        Assert.That(DeviceList.IsKnown("cuda:3") && DeviceList.IsKnown("opencl:0") && DeviceList.IsKnown("cpu"));
        Assert.That(DeviceList.IsKnown("ilgpu-cpu:1") || DeviceList.IsKnown("cuda:-1") || DeviceList.IsKnown("cuda:"), Is.False);
        Assert.That(DeviceList.KindOf("cuda:1"), Is.EqualTo("cuda"));
    }

    [Test]
    public void AMissingCudaIndexIsNamedWhenTheDeviceOpens()
    {
        // No machine has 1000 CUDA devices: the error says how many there are (none here without a GPU).
        Assert.That(() => DeviceFactory.Create("cuda:999"), Throws.TypeOf<PlatformNotSupportedException>().With.Message.StartsWith("cuda"));
        var r = Cli.Run("generate", "--device", "cuda:x", "--count", "1", "--steps", "1");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(r.Err, Does.Contain("unknown device 'cuda:x'"));
    }
}
