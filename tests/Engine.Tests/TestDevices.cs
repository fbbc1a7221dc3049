namespace Engine.Tests;

/// <summary>
/// Devices the pipeline tests run on: <c>cpu</c> always, <c>cuda</c> where <c>ENGINE_TEST_CUDA=1</c>.
/// Created once per kind and shared.
/// </summary>
public static class TestDevices
{
    private static readonly Dictionary<string, Engine.Core.Device> Cache = new();

    public static IEnumerable<string> Kinds
    {
        get
        {
            yield return "cpu";
            if (Environment.GetEnvironmentVariable("ENGINE_TEST_CUDA") == "1") yield return "cuda";
        }
    }

    public static Engine.Core.Device Get(string kind)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(kind, out var device)) Cache[kind] = device = Engine.Core.DeviceFactory.Create(kind);
            return device;
        }
    }
}
