using Engine.Core;

namespace Engine.Models.Binding;

/// <summary>
/// Where weights come from: a key/shape directory plus a way to load a tensor. A safetensors
/// folder implements it with data; a key manifest implements it with shapes only, which is enough
/// to prove a binding.
/// </summary>
public interface IWeightSource
{
    /// <summary>What to name in error messages (a file path, a manifest).</summary>
    string Description { get; }

    /// <summary>Every tensor key available.</summary>
    IReadOnlyCollection<string> Keys { get; }

    /// <summary>The stored shape of <paramref name="key"/>.</summary>
    int[] Shape(string key);

    /// <summary>Loads <paramref name="key"/> onto <paramref name="device"/> as a float32 tensor.</summary>
    Tensor Load(Device device, string key);

    /// <summary>
    /// Loads <paramref name="key"/> stored as <paramref name="dtype"/>. The default converts the float32
    /// load on the device; sources holding half-precision data may load it without the float32 step.
    /// </summary>
    Tensor Load(Device device, string key, DType dtype)
    {
        var wide = Load(device, key);
        if (dtype == DType.F32) return wide;
        try { return device.Convert(wide, dtype); }
        finally { wide.Dispose(); }
    }
}
