using System.Runtime.InteropServices;
using System.Text.Json;
using Engine.Core;
using Engine.Models.Checkpoints;

namespace Engine.Generation.Checkpoints;

/// <summary>
/// Writes a checkpoint component as a safetensors file one tensor at a time (header first, from the shapes),
/// so converting a multi-gigabyte file holds one tensor in memory, not the model. Written to a temporary file
/// and renamed into place.
/// </summary>
internal static class StreamingSafetensors
{
    public static void Write(string path, CheckpointWeightSource source, DType storage)
    {
        var keys = source.Keys.Order(StringComparer.Ordinal).ToList();
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            json.WriteStartObject("__metadata__");
            json.WriteString("format", "pt");
            json.WriteEndObject();
            long offset = 0;
            foreach (var key in keys)
            {
                var shape = source.Shape(key);
                long bytes = shape.Aggregate(1L, (a, d) => a * d) * storage.Size();
                json.WriteStartObject(key);
                json.WriteString("dtype", storage.ToString());
                json.WriteStartArray("shape");
                foreach (int d in shape) json.WriteNumberValue(d);
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
        while (header.Length % 8 != 0) header.WriteByte((byte)' ');
        string temp = path + $".{Environment.ProcessId}.tmp";
        try
        {
            using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                file.Write(BitConverter.GetBytes((ulong)header.Length));
                header.Position = 0;
                header.CopyTo(file);
                foreach (var key in keys)
                {
                    var values = source.ReadFloats(key);
                    if (storage == DType.F32) file.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                    else if (storage == DType.F16)
                    {
                        var half = new Half[values.Length];
                        System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(values, half);
                        file.Write(MemoryMarshal.AsBytes(half.AsSpan()));
                    }
                    else
                    {
                        var bf = new ushort[values.Length];
                        for (int i = 0; i < values.Length; i++) bf[i] = DTypeExtensions.SingleToBFloat16(values[i]);
                        file.Write(MemoryMarshal.AsBytes(bf.AsSpan()));
                    }
                }
            }
            File.Move(temp, path, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
    }
}
