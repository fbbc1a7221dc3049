namespace Engine.Bench.Peers;

/// <summary>
/// Finds the shared ONNX peer files: <c>ENGINE_PEERS</c>, else <c>../shared/peers</c> beside the
/// repository (searched upwards from the working directory and from the program's folder). When they
/// are absent, suites that need them run the engine alone and say so once.
/// </summary>
public static class PeerFiles
{
    private static bool _reported;

    /// <summary>The peers folder, or null when absent.</summary>
    public static string? Root { get; } = FindRoot();

    /// <summary>The repository root (the folder holding Engine.sln), or null.</summary>
    public static string? RepositoryRoot { get; } = FindRepository();

    private static string? FindRoot()
    {
        var env = Environment.GetEnvironmentVariable("ENGINE_PEERS");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        var repo = FindRepository();
        if (repo is null) return null;
        var candidate = Path.GetFullPath(Path.Combine(repo, "..", "shared", "peers"));
        if (Directory.Exists(candidate)) return candidate;
        // Worktrees live one level further down (wt/<name>); the shared folder sits beside them.
        candidate = Path.GetFullPath(Path.Combine(repo, "..", "..", "shared", "peers"));
        return Directory.Exists(candidate) ? candidate : null;
    }

    private static string? FindRepository()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        return null;
    }

    /// <summary>The path of a peer file, or null (with a one-time message) when the folder or the file is missing.</summary>
    public static string? Find(string file)
    {
        var path = Root is null ? null : Path.Combine(Root, file);
        if (path is not null && File.Exists(path)) return path;
        if (!_reported)
        {
            _reported = true;
            Console.WriteLine(Root is null
                ? "ONNX Runtime peers skipped: ../shared/peers not found (set ENGINE_PEERS to the folder of the peer .onnx files)."
                : $"ONNX Runtime peer skipped: {file} not found in {Root}.");
        }
        return null;
    }
}
