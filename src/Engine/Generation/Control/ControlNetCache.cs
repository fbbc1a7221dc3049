using Engine.Core;
using Engine.Models;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Generation;

/// <summary>ControlNetModel folders loaded onto a model's device, by full path, so a batch of requests loads each once.</summary>
internal sealed class ControlNetCache(Device device) : IDisposable
{
    private readonly Dictionary<string, ControlNetModel> _loaded = new(StringComparer.Ordinal);

    /// <summary>The ControlNet in <paramref name="folder"/>; errors name the folder and <c>--controlnet</c>.</summary>
    public ControlNetModel Get(string folder, DType weightStorage)
    {
        string full = Path.GetFullPath(folder);
        if (_loaded.TryGetValue(full, out var cached)) return cached;
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"ControlNet folder '{full}' (--controlnet) does not exist.");
        Network network;
        try { network = ModelLoader.Load(device, full, weightStorage); }
        catch (ModelLoadException e) { throw new InvalidDataException($"ControlNet '{full}' (--controlnet): {e.Message}", e); }
        if (network is not ControlNetModel controlnet)
        {
            network.Dispose();
            throw new ArgumentException($"'{full}' (--controlnet) holds a {network.Config.ClassName}, not a ControlNetModel.");
        }
        return _loaded[full] = controlnet;
    }

    /// <summary>Bytes the loaded ControlNets' weights occupy on the device.</summary>
    public long WeightBytes => _loaded.Values.Sum(n => n.ParameterBytes);

    public void Dispose()
    {
        foreach (var net in _loaded.Values) net.Dispose();
        _loaded.Clear();
    }
}
