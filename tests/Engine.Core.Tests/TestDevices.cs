namespace Engine.Core.Tests;

/// <summary>
/// The devices every op test runs on. <c>cpu</c> always; the ILGPU CPU accelerator as
/// <c>ilgpu-cpu</c> unless <c>ENGINE_TEST_ILGPU=0</c>; <c>cuda</c> only where <c>ENGINE_TEST_CUDA=1</c>
/// (GPU machines). Devices are created once per kind and shared, since ILGPU kernel compilation is costly.
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

    public static Device Get(string kind)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(kind, out var device)) Cache[kind] = device = DeviceFactory.Create(kind);
            return device;
        }
    }
}
