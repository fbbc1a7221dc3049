using System.Text;
using System.Text.Json;

namespace Engine.Jobs.Sharding;

/// <summary>
/// One line of a shard manifest: an image of a job line that this shard made (its file, size, SHA-256 and the full
/// request, as the image's sidecar records it), or one it failed to make (<see cref="Error"/>).
/// </summary>
/// <param name="Line">1-based line of the job file.</param>
/// <param name="Index">Image index within the job line.</param>
/// <param name="Seed">The image's seed.</param>
/// <param name="File">PNG file name inside the output folder (null for a failure before the name was known).</param>
/// <param name="Size">PNG size in bytes, for a made image.</param>
/// <param name="Sha256">PNG SHA-256 as lowercase hex, for a made image.</param>
/// <param name="Request">The full request (the image's sidecar object), for a made image.</param>
/// <param name="Error">Why the image was not made, for a failure.</param>
public sealed record ManifestEntry(int Line, int Index, ulong Seed, string? File, long? Size, string? Sha256, JsonElement? Request, string? Error)
{
    /// <summary>Whether the entry records a made image (not a failure).</summary>
    public bool Done => Error is null && File is not null && Size is not null && Sha256 is not null;

    /// <summary>The entry as one line of compact JSON (no newline).</summary>
    public string ToJsonLine()
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteNumber("line", Line);
            w.WriteNumber("index", Index);
            w.WriteNumber("seed", Seed);
            if (File is not null) w.WriteString("file", File);
            if (Size is { } size) w.WriteNumber("size", size);
            if (Sha256 is not null) w.WriteString("sha256", Sha256);
            if (Error is not null) w.WriteString("error", Error);
            if (Request is { } request)
            {
                w.WritePropertyName("request");
                request.WriteTo(w);
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    /// <summary>Reads one manifest line; throws <see cref="FormatException"/> naming what is wrong.</summary>
    public static ManifestEntry Parse(string line)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(line); }
        catch (JsonException e) { throw new FormatException($"invalid JSON ({e.Message})"); }
        using (doc)
        {
            var r = doc.RootElement;
            if (r.ValueKind != JsonValueKind.Object) throw new FormatException("not a JSON object");
            int Int(string name) => r.TryGetProperty(name, out var v) && v.TryGetInt32(out int n) && n >= 0 ? n : throw new FormatException($"field '{name}' is missing or not a whole number");
            string? Str(string name) => r.TryGetProperty(name, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() : throw new FormatException($"field '{name}' is not a string") : null;
            ulong seed = r.TryGetProperty("seed", out var s) && s.TryGetUInt64(out ulong sv) ? sv : throw new FormatException("field 'seed' is missing or not a whole number");
            long? size = r.TryGetProperty("size", out var z) ? z.TryGetInt64(out long zv) && zv >= 0 ? zv : throw new FormatException("field 'size' is not a whole number") : null;
            JsonElement? request = r.TryGetProperty("request", out var q) ? q.Clone() : null;
            var entry = new ManifestEntry(Int("line"), Int("index"), seed, Str("file"), size, Str("sha256"), request, Str("error"));
            if (!entry.Done && entry.Error is null) throw new FormatException("neither a made image (file, size, sha256) nor an error");
            return entry;
        }
    }
}
