using Engine.Core;
using Engine.Gpu;

namespace Engine.TestSupport;

/// <summary>
/// The devices tests run on, created once per kind and shared (ILGPU kernel compilation is costly).
/// <see cref="Kinds"/>: <c>cpu</c>; ILGPU's CPU accelerator <c>ilgpu-cpu</c> unless
/// <c>ENGINE_TEST_ILGPU=0</c>; <c>cuda</c> where <c>ENGINE_TEST_CUDA=1</c>. Whole-pipeline tests,
/// too slow for the CPU accelerator, use <see cref="FastKinds"/> (cpu, and cuda where enabled).
/// </summary>
public static class TestDevices
{
    private static readonly Dictionary<string, Device> Cache = new();

    public static IEnumerable<string> Kinds
    {
        get
        {
            yield return "cpu";
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_ILGPU") != "0") yield return "ilgpu-cpu";
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_CUDA") == "1") yield return "cuda";
        }
    }

    public static IEnumerable<string> FastKinds => Kinds.Where(k => k != "ilgpu-cpu");

    /// <summary>The shared device of a kind; skips the test when the kind is not available here.</summary>
    public static Device Get(string kind)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(kind, out var device)) return device;
            try { device = DeviceFactory.Create(kind); }
            catch (Exception e) when (e is PlatformNotSupportedException or NotSupportedException)
            {
                Assert.Ignore($"Device '{kind}' is not available here: {e.Message}");
                throw;
            }
            return Cache[kind] = device;
        }
    }
}
