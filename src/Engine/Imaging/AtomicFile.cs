namespace Engine.Imaging;

/// <summary>Writes whole files atomically through a temporary file in the target's folder and a rename.</summary>
public static class AtomicFile
{
    /// <summary>Suffix of the temporary files this class creates (and removes).</summary>
    public const string TempSuffix = ".partial";

    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>, replacing any existing file.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"{path}: has no parent folder.", nameof(path));
        Directory.CreateDirectory(dir);
        // A hidden name in the same folder keeps the rename on one file system (so it is atomic) and
        // keeps a crash's leftover out of image listings.
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e)
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            if (e is IOException or UnauthorizedAccessException) throw new IOException($"{path}: cannot write file: {e.Message}", e);
            throw;
        }
    }
}
