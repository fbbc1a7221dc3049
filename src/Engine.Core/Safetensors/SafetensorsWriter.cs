using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace Engine.Core.Safetensors;

/// <summary>
/// Writes safetensors files. Data is written to a temporary file beside the target and renamed
/// into place at the end, so a failure or cancellation never leaves a half-written file.
/// </summary>
public static class SafetensorsWriter
{
    /// <summary>A tensor to write: name, shape, float32 values and the storage type to encode them as.</summary>
    public readonly record struct Entry(string Name, int[] Shape, float[] Data, DType DType = DType.F32);

    /// <summary>A tensor's layout: name, shape and the storage type its float32 values are encoded as.</summary>
    public readonly record struct Layout(string Name, int[] Shape, DType DType = DType.F32);

    /// <summary>
    /// Writes <paramref name="entries"/> (names must be unique) with optional string metadata. Every
    /// entry is validated before anything touches the disk; on any failure the target is left as it was.
    /// </summary>
    public static void Write(string path, IEnumerable<Entry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(entries);
        var list = entries.ToList();
        foreach (var e in list)
        {
            if (e.Shape is null || e.Data is null) throw new ArgumentException($"{path}: tensor '{e.Name}' needs both a shape and data.", nameof(entries));
            if (e.Shape.All(d => d >= 0) && ShapeLengthOrMax(e.Shape) != e.Data.Length)
                throw new ArgumentException($"{path}: tensor '{e.Name}' has {e.Data.Length} values for shape {Tensor.ShapeString(e.Shape)}.", nameof(entries));
        }
        int next = 0;
        Write(path, [.. list.Select(e => new Layout(e.Name, e.Shape, e.DType))], _ => list[next++].Data, metadata);
    }

    /// <summary>
    /// Writes the tensors of <paramref name="layouts"/> in order, asking <paramref name="values"/> for each one's
    /// float32 values only when it is written, so a file larger than memory streams through one tensor at a time.
    /// Layouts and metadata are validated before anything touches the disk; values of the wrong length fail
    /// the write; on any failure the target is left as it was.
    /// </summary>
    public static void Write(string path, IReadOnlyList<Layout> layouts, Func<Layout, float[]> values, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(layouts);
        ArgumentNullException.ThrowIfNull(values);
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var e in layouts)
        {
            if (e.Name is null) throw new ArgumentException($"{path}: a tensor has no name.", nameof(layouts));
            if (e.Name == "__metadata__") throw new ArgumentException($"{path}: tensor name '__metadata__' is reserved for the metadata map.", nameof(layouts));
            if (!names.Add(e.Name)) throw new ArgumentException($"{path}: duplicate tensor name '{e.Name}'.", nameof(layouts));
            if (e.Shape is null) throw new ArgumentException($"{path}: tensor '{e.Name}' needs a shape.", nameof(layouts));
            if (e.Shape.Any(d => d < 0)) throw new ArgumentException($"{path}: tensor '{e.Name}' has a negative dimension in shape {Tensor.ShapeString(e.Shape)}.", nameof(layouts));
            if (!Enum.IsDefined(e.DType)) throw new ArgumentException($"{path}: tensor '{e.Name}' has unknown storage type {(int)e.DType}.", nameof(layouts));
        }
        if (metadata is not null)
            foreach (var (k, v) in metadata)
                if (k is null || v is null) throw new ArgumentException($"{path}: metadata key '{k}' needs a non-null string value.", nameof(metadata));
        var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var e in layouts)
            {
                long bytes = ShapeLengthOrMax(e.Shape) * e.DType.Size();
                json.WriteStartObject(e.Name);
                json.WriteString("dtype", e.DType.ToString());
                json.WriteStartArray("shape");
                foreach (int d in e.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        // Pad the header with spaces to a multiple of 8 so the data section is aligned.
        int pad = (int)((8 - header.Length % 8) % 8);
        for (int i = 0; i < pad; i++) header.WriteByte((byte)' ');
        if (header.Length > SafetensorsFile.MaxHeaderBytes)
            throw new ArgumentException($"{path}: header of {header.Length} bytes exceeds the format's limit of {SafetensorsFile.MaxHeaderBytes} bytes.", nameof(layouts));

        string full = System.IO.Path.GetFullPath(path);
        string temp = full + $".{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                file.Write(BitConverter.GetBytes((ulong)header.Length));
                header.Position = 0;
                header.CopyTo(file);
                foreach (var e in layouts)
                {
                    var data = values(e);
                    if (data is null || data.Length != ShapeLengthOrMax(e.Shape))
                        throw new ArgumentException($"{path}: tensor '{e.Name}' has {data?.Length ?? 0} values for shape {Tensor.ShapeString(e.Shape)}.", nameof(values));
                    WriteData(file, e.Name, e.DType, data);
                }
            }
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Product of the dimensions, saturating at <see cref="long.MaxValue"/> instead of overflowing.</summary>
    private static long ShapeLengthOrMax(int[] shape)
    {
        if (shape.Contains(0)) return 0;
        long n = 1;
        foreach (int d in shape) n = n > long.MaxValue / d ? long.MaxValue : n * d;
        return n;
    }

    private static void WriteData(Stream file, string name, DType dtype, float[] data)
    {
        switch (dtype)
        {
            case DType.F32: file.Write(MemoryMarshal.AsBytes(data.AsSpan())); break;
            case DType.F16:
                var half = new Half[data.Length];
                System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(data, half);
                file.Write(MemoryMarshal.AsBytes(half.AsSpan()));
                break;
            case DType.BF16:
                var bits = new ushort[data.Length];
                for (int i = 0; i < bits.Length; i++) bits[i] = DTypeExtensions.SingleToBFloat16(data[i]);
                file.Write(MemoryMarshal.AsBytes(bits.AsSpan()));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), $"tensor '{name}': unknown storage type {dtype}.");
        }
    }
}
