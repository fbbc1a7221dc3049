using System.Runtime.InteropServices;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Binding;

namespace Engine.Models.Checkpoints;

/// <summary>
/// One component (UNet, VAE, a text encoder) of a memory-mapped single-file checkpoint seen under its diffusers
/// keys. Each tensor goes from the mapping to the device once (a row slice or a reshape costs nothing; only the
/// transposed OpenCLIP projection passes through a host array), so the file is never read whole into memory.
/// </summary>
public sealed class CheckpointWeightSource : IWeightSource
{
    private readonly SafetensorsFile _file;
    private readonly IReadOnlyDictionary<string, CheckpointTensor> _map;

    /// <summary>A view of <paramref name="file"/> (owned by the caller) through <paramref name="map"/> (diffusers key → file tensor).</summary>
    public CheckpointWeightSource(SafetensorsFile file, string component, IReadOnlyDictionary<string, CheckpointTensor> map)
    {
        _file = file;
        _map = map;
        Component = component;
        Description = $"{file.Path} ({component})";
    }

    /// <summary>The component name (unet, vae, text_encoder, text_encoder_2).</summary>
    public string Component { get; }

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<string> Keys => (IReadOnlyCollection<string>)_map.Keys;

    /// <summary>The file tensor behind each diffusers key.</summary>
    public IReadOnlyDictionary<string, CheckpointTensor> Map => _map;

    /// <inheritdoc />
    public int[] Shape(string key) => (int[])_map[key].Shape.Clone();

    /// <inheritdoc />
    public Tensor Load(Device device, string key) => Load(device, key, DType.F32);

    /// <inheritdoc />
    public Tensor Load(Device device, string key, DType dtype)
    {
        var t = _map[key];
        var info = _file.Info(t.FileKey);
        if (info.DeviceType is not { } stored)
            throw new ModelLoadException($"{_file.Path}: tensor '{t.FileKey}' is stored as {info.Type}; model weights must be F32, F16 or BF16.");
        Tensor staged = t.Transpose ? device.Upload(ReadFloats(key), t.Shape) : device.UploadRaw(Bytes(t), stored, t.Shape);
        MappedPages.Release(_file.GetBytes(t.FileKey));
        if (staged.DType == dtype) return staged;
        try { return device.Convert(staged, dtype); }
        finally { staged.Dispose(); }
    }

    /// <summary>The tensor of <paramref name="key"/> as float32 on the host, in the diffusers shape (for conversion to a folder).</summary>
    public float[] ReadFloats(string key)
    {
        var t = _map[key];
        var all = _file.ReadFloats(t.FileKey);
        MappedPages.Release(_file.GetBytes(t.FileKey));
        if (t.Transpose)
        {
            var shape = _file.Info(t.FileKey).Shape;
            int rows = shape[0], cols = shape[1];
            var result = new float[all.Length];
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) result[c * rows + r] = all[r * cols + c];
            return result;
        }
        if (t.RowCount < 0) return all;
        int row = all.Length / _file.Info(t.FileKey).Shape[0];
        return all.AsSpan(t.RowStart * row, t.RowCount * row).ToArray();
    }

    private ReadOnlySpan<byte> Bytes(CheckpointTensor t)
    {
        var bytes = _file.GetBytes(t.FileKey);
        if (t.RowCount < 0) return bytes;
        int row = bytes.Length / _file.Info(t.FileKey).Shape[0];
        return bytes.Slice(t.RowStart * row, t.RowCount * row);
    }
}
