namespace Engine.Cli;

/// <summary>
/// Finds model folders: a path that exists, or the name of a built-in model in the <c>models/</c>
/// folder of the repository the tool was built from (found by searching upward from the executable,
/// then from the working folder) or in <c>$ENGINE_MODELS</c>.
/// </summary>
public static class ModelLocator
{
    /// <summary>Environment variable naming a folder of built-in models (holding <c>fmnist-unet</c> etc.).</summary>
    public const string EnvironmentVariable = "ENGINE_MODELS";

    /// <summary>The model <c>engine generate</c> uses without <c>--model</c>.</summary>
    public const string DefaultModel = "fmnist-unet";

    /// <summary>The classifier <c>engine eval</c> scores with.</summary>
    public const string DefaultClassifier = "fmnist-classifier";

    /// <summary>The folder of built-in models, or null when none is found.</summary>
    public static string? ModelsRoot()
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrWhiteSpace(env) && Directory.Exists(env)) return Path.GetFullPath(env);
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "models");
                if (Directory.Exists(Path.Combine(candidate, DefaultModel))) return candidate;
            }
        return null;
    }

    /// <summary>
    /// The full path of a model folder: <paramref name="model"/> when it is an existing folder (or single-file checkpoint),
    /// else the built-in model of that name; null means <paramref name="fallbackName"/>. Throws
    /// <see cref="DirectoryNotFoundException"/> saying where it looked, and a <see cref="UsageException"/>
    /// naming <paramref name="option"/> for an empty name (given, but blank, so not the default).
    /// </summary>
    public static string Resolve(string? model, string fallbackName = DefaultModel, string option = "--model")
    {
        if (model is not null && string.IsNullOrWhiteSpace(model))
            throw new UsageException($"{option} is empty; give a model folder or a built-in model name, or leave {option} out for {fallbackName}.");
        if (!string.IsNullOrWhiteSpace(model) && Directory.Exists(model)) return Path.GetFullPath(model);
        // A single-file checkpoint.
        if (!string.IsNullOrWhiteSpace(model) && File.Exists(model) && model.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return Path.GetFullPath(model);
        if (!string.IsNullOrWhiteSpace(model) && File.Exists(model))
            throw new DirectoryNotFoundException($"{option} '{model}' is a file, not a model: give a model folder (config.json and weights), a pipeline folder, a single-file checkpoint (.safetensors) or a built-in model name.");
        string name = string.IsNullOrWhiteSpace(model) ? fallbackName : model;
        var root = ModelsRoot();
        bool plainName = name.IndexOfAny(['/', '\\']) < 0 && name != "." && name != "..";
        if (root is not null && plainName && Directory.Exists(Path.Combine(root, name))) return Path.Combine(root, name);
        if (!string.IsNullOrWhiteSpace(model) && !plainName)
            throw new DirectoryNotFoundException($"model folder '{model}' does not exist.");
        string where = root is null
            ? $"no built-in models folder was found above {AppContext.BaseDirectory} or the working folder, and ${EnvironmentVariable} is not set to one"
            : $"built-in models in {root}: {string.Join(", ", Directory.GetDirectories(root).Select(Path.GetFileName).Order())}";
        throw new DirectoryNotFoundException($"model '{name}' is neither an existing folder nor a built-in model ({where}).");
    }
}
