namespace Engine.TestSupport;

/// <summary>
/// Locations the tests read: the repository root (shipped <c>models/</c>) and the shared material
/// beside it (<c>../shared</c> or the nearest <c>shared</c> folder above, or the parent of <c>ENGINE_FIXTURES</c> when that is set).
/// </summary>
public static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Models => Path.Combine(RepoRoot, "models");

    public static string? SharedRoot { get; } = FindShared();

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln"))) return dir.FullName;
        throw new DirectoryNotFoundException($"No Engine.sln above {AppContext.BaseDirectory}.");
    }

    private static string? FindShared()
    {
        var env = Environment.GetEnvironmentVariable("ENGINE_FIXTURES");
        if (!string.IsNullOrEmpty(env))
        {
            var parent = Path.GetDirectoryName(Path.GetFullPath(env).TrimEnd(Path.DirectorySeparatorChar));
            return parent is not null && Directory.Exists(Path.Combine(parent, "models")) ? parent : null;
        }
        // ../shared beside the repository; a worktree nested one level deeper finds it further up.
        for (var dir = new DirectoryInfo(RepoRoot).Parent; dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared");
            if (Directory.Exists(Path.Combine(candidate, "models"))) return candidate;
        }
        return null;
    }

    /// <summary>A file under the shared folder; skips the test with a clear message when absent.</summary>
    public static string RequireShared(string relativePath)
    {
        if (SharedRoot is null) Assert.Ignore("Shared models not found: place them at ../shared/models (or set ENGINE_FIXTURES to ../shared/fixtures).");
        var path = Path.Combine(SharedRoot!, relativePath);
        if (!File.Exists(path)) Assert.Ignore($"Shared file {path} not found.");
        return path;
    }
}
