using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Engine.Models.Tests.Checkpoints;

/// <summary>
/// A full-size single file made from a header manifest (single_file/manifest_*.json): the header, then the
/// file length set without writing data, so a 2-7 GB file occupies a few hundred KB (data reads as zeros).
/// </summary>
public static class SparseCheckpoint
{
    private static readonly Dictionary<string, int> Sizes = new() { ["F16"] = 2, ["BF16"] = 2, ["F32"] = 4, ["I64"] = 8 };

    /// <summary>Writes the sparse file for <paramref name="manifest"/> to <paramref name="path"/>.</summary>
    public static void Write(JsonElement manifest, string path)
    {
        var header = new JsonObject { ["__metadata__"] = new JsonObject { ["format"] = "pt" } };
        long offset = 0;
        foreach (var t in manifest.GetProperty("tensors").EnumerateObject())
        {
            var shape = t.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()).ToArray();
            string dtype = t.Value.GetProperty("dtype").GetString()!;
            long bytes = shape.Aggregate(1L, (a, d) => a * d) * Sizes[dtype];
            header[t.Name] = new JsonObject
            {
                ["dtype"] = dtype,
                ["shape"] = new JsonArray([.. shape.Select(d => (JsonNode)d)]),
                ["data_offsets"] = new JsonArray(offset, offset + bytes),
            };
            offset += bytes;
        }
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (text.Length + 7) / 8 * 8;
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write);
        f.Write(BitConverter.GetBytes((ulong)padded));
        f.Write(text);
        for (int i = text.Length; i < padded; i++) f.WriteByte((byte)' ');
        f.SetLength(8 + padded + offset);
    }
}
