using System.Text;

namespace Engine.Core.Tests;

/// <summary>
/// Builds raw safetensors bytes by hand (so tests can break any rule of the format) and hands out
/// paths in a private temporary folder that is removed when disposed.
/// </summary>
public sealed class SafetensorsTestFiles : IDisposable
{
    public SafetensorsTestFiles()
    {
        Folder = Path.Combine(Path.GetTempPath(), "engine-safetensors-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
    }

    public string Folder { get; }

    /// <summary>A fresh path in the folder (nothing is created).</summary>
    public string NewPath(string stem = "t") => Path.Combine(Folder, $"{stem}-{Guid.NewGuid():N}.safetensors");

    /// <summary>Writes <paramref name="bytes"/> to a fresh path and returns it.</summary>
    public string WriteBytes(byte[] bytes, string stem = "t")
    {
        var path = NewPath(stem);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    /// <summary>Header length (little-endian u64) + header bytes + data bytes; the length may be overridden to lie.</summary>
    public static byte[] Raw(byte[] header, byte[] data, ulong? claimedHeaderLength = null)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BitConverter.TryWriteBytes(bytes.AsSpan(0, 8), claimedHeaderLength ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    /// <summary>A file whose header is <paramref name="json"/> (UTF-8) followed by <paramref name="dataBytes"/> bytes of data.</summary>
    public static byte[] Json(string json, int dataBytes) => Raw(Encoding.UTF8.GetBytes(json), new byte[dataBytes]);

    /// <summary>A file whose header is <paramref name="json"/> followed by the given data.</summary>
    public static byte[] Json(string json, byte[] data) => Raw(Encoding.UTF8.GetBytes(json), data);

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); }
        catch (IOException) { } // best effort: a mapping still closing must not fail the run
        catch (UnauthorizedAccessException) { }
    }
}
