namespace Engine.Bench.Models;

/// <summary>
/// Finds a shipped model folder: <c>ENGINE_MODELS/name</c> when that variable is set, else
/// <c>models/name</c> in the nearest ancestor of the working or binary directory that has one, else
/// <c>shared/models/name</c> beside such an ancestor (the shared material next to the repository).
/// </summary>
public static class ModelFolders
{
    public static string Find(string name)
    {
        if (Environment.GetEnvironmentVariable("ENGINE_MODELS") is { Length: > 0 } root)
        {
            var direct = Path.Combine(root, name);
            return Has(direct) ? direct : throw new DirectoryNotFoundException($"ENGINE_MODELS={root}: no model folder '{name}' with a config.json there.");
        }
        var tried = new List<string>();
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "models", name), Path.Combine(dir.FullName, "shared", "models", name) })
                {
                    if (Has(candidate)) return candidate;
                    tried.Add(candidate);
                }
        throw new DirectoryNotFoundException($"Model folder '{name}' not found: set ENGINE_MODELS or run from the repository (looked in {tried.Count} places, e.g. {tried[0]}).");
    }

    private static bool Has(string folder) => File.Exists(Path.Combine(folder, "config.json"));
}
