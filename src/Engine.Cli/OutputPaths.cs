namespace Engine.Cli;

/// <summary>
/// Checks where results will go before any work starts, so a run does not sample for minutes and then
/// find that its output folder cannot be made or written.
/// </summary>
public static class OutputPaths
{
    /// <summary>
    /// Throws an <see cref="IOException"/> naming <paramref name="option"/> unless <paramref name="folder"/>
    /// is a writable folder or can be created as one: its nearest existing ancestor must be a folder that
    /// takes a file (probed with a temporary file, removed at once). Creates nothing that stays.
    /// </summary>
    public static void RequireWritableFolder(string folder, string option)
    {
        string full = Path.GetFullPath(folder);
        string? existing = full;
        while (existing is not null && !Directory.Exists(existing))
        {
            if (File.Exists(existing))
                throw new IOException($"{option} {folder}: '{existing}' is a file, so the output folder cannot be made there; give a folder path.");
            existing = Path.GetDirectoryName(existing);
        }
        if (existing is null) throw new IOException($"{option} {folder}: no part of the path exists.");
        string probe = Path.Combine(existing, $".engine-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{option} {folder}: cannot write in '{existing}': {e.Message}", e);
        }
    }

    /// <summary>
    /// Throws an <see cref="IOException"/> naming <paramref name="option"/> unless <paramref name="file"/> can be
    /// written: not a folder, in an existing folder that takes a file (probed with a temporary file, removed at once).
    /// Checked before any work, since results are written only at the end.
    /// </summary>
    public static void RequireWritableFile(string file, string option)
    {
        string full = Path.GetFullPath(file);
        if (Directory.Exists(full)) throw new IOException($"{option} {file}: is a folder; give a file path.");
        string folder = Path.GetDirectoryName(full) ?? throw new IOException($"{option} {file}: not a file path.");
        if (File.Exists(folder)) throw new IOException($"{option} {file}: '{folder}' is a file, not a folder.");
        if (!Directory.Exists(folder)) throw new IOException($"{option} {file}: folder '{folder}' does not exist.");
        RequireWritableFolder(folder, option);
    }

    /// <summary>
    /// Throws a <see cref="FileNotFoundException"/> naming <paramref name="what"/> unless <paramref name="path"/>
    /// is an existing file; a folder given where a file is expected is named as such.
    /// </summary>
    public static void RequireFile(string path, string what)
    {
        if (Directory.Exists(path)) throw new FileNotFoundException($"{path}: {what} is a folder; expected a file.", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: {what} does not exist.", path);
    }
}
