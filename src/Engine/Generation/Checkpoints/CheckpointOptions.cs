namespace Engine.Generation.Checkpoints;

/// <summary>
/// How a single-file checkpoint is read: <c>--config DIR</c> (configs, tokenizers and scheduler from a diffusers
/// pipeline folder instead of the inferred stock ones), <c>--prediction-type</c> (overrides the scheduler's) and
/// <c>--vae DIR|FILE</c> (replaces the checkpoint's VAE). All null means: infer everything from the file.
/// </summary>
public sealed record CheckpointOptions
{
    /// <summary>A diffusers pipeline folder whose configs, tokenizers and scheduler config describe the file, or null.</summary>
    public string? ConfigFolder { get; init; }

    /// <summary>epsilon, v_prediction or sample; null keeps the config's.</summary>
    public string? PredictionType { get; init; }

    /// <summary>A diffusers VAE folder, or a safetensors file (original or diffusers names), replacing the checkpoint's VAE; or null.</summary>
    public string? Vae { get; init; }

    /// <summary>The prediction types diffusers' schedulers take.</summary>
    public static readonly IReadOnlyList<string> PredictionTypes = ["epsilon", "v_prediction", "sample"];

    /// <summary>Whether nothing is set.</summary>
    public bool IsEmpty => ConfigFolder is null && PredictionType is null && Vae is null;

    /// <summary>Throws naming the option when a path does not exist or the prediction type is unknown.</summary>
    public void Validate()
    {
        if (ConfigFolder is { } c && !Directory.Exists(c)) throw new ArgumentException($"config folder '{c}' (--config) does not exist.");
        if (Vae is { } v && !Directory.Exists(v) && !File.Exists(v)) throw new ArgumentException($"VAE '{v}' (--vae) is neither a folder nor a file.");
        if (PredictionType is { } p && !PredictionTypes.Contains(p))
            throw new ArgumentException($"prediction type '{p}' (--prediction-type) is not one of {string.Join(", ", PredictionTypes)}.");
    }
}
