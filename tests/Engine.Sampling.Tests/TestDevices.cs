using Engine.Core;

namespace Engine.Sampling.Tests;

/// <summary>
/// Devices the sampler tests run on: <c>cpu</c> always and <c>ilgpu-cpu</c> when the factory can create
/// it (tests skip it with a message otherwise). Devices are created once per kind and shared.
/// </summary>
public static class TestDevices
{
    private static readonly Dictionary<string, Device> Cache = new();

    public static IEnumerable<string> Kinds => ["cpu", "ilgpu-cpu"];

    public static Device Get(string kind)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(kind, out var device)) return device;
            try { device = DeviceFactory.Create(kind); }
            catch (Exception e) when (e is PlatformNotSupportedException or NotSupportedException or ArgumentException)
            {
                Assert.Ignore($"Device '{kind}' is not available here: {e.Message}");
            }
            return Cache[kind] = device!;
        }
    }
}
