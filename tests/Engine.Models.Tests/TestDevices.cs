namespace Engine.Models.Tests;

/// <summary>
/// The devices every model test runs on: <c>cpu</c> always, <c>ilgpu-cpu</c> (skipped with a clear
/// message when this build has no ILGPU backend), and <c>cuda</c> where <c>ENGINE_TEST_CUDA=1</c>.
/// Devices are created once per kind and shared, since ILGPU kernel compilation is costly.
/// </summary>
public static class TestDevices
{
    private static readonly Dictionary<string, Engine.Core.Device> Cache = new();

    public static IEnumerable<string> Kinds
    {
        get
        {
            yield return "cpu";
            yield return "ilgpu-cpu";
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_CUDA") == "1") yield return "cuda";
        }
    }

    /// <summary>The shared device of a kind; ignores the test when the kind cannot be created here.</summary>
    public static Engine.Core.Device Get(string kind)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(kind, out var device)) return device;
            try { device = Engine.Core.DeviceFactory.Create(kind); }
            catch (PlatformNotSupportedException e) { Assert.Ignore($"Device '{kind}' is not available in this build: {e.Message}"); throw; }
            Cache[kind] = device;
            return device;
        }
    }
}
