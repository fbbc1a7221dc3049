using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// Constant tables (position embeddings, row indices) built on the host once and kept on the device
/// they were first used on, keyed by a small value such as a grid size. Disposed with the network.
/// </summary>
public sealed class DeviceTableCache<TKey> : IDisposable where TKey : notnull
{
    private readonly Dictionary<TKey, Tensor> _tables = new();
    private readonly object _lock = new();

    /// <summary>The table for <paramref name="key"/> on <paramref name="device"/>, created by <paramref name="create"/> on first use.</summary>
    public Tensor Get(Device device, TKey key, Func<(float[] Data, int[] Shape)> create)
    {
        lock (_lock)
        {
            if (_tables.TryGetValue(key, out var t) && ReferenceEquals(t.Device, device)) return t;
            t?.Dispose();
            var (data, shape) = create();
            return _tables[key] = device.Upload(data, shape);
        }
    }

    /// <summary>Frees every table.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var t in _tables.Values) t.Dispose();
            _tables.Clear();
        }
    }
}
