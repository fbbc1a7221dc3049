using Engine.Core.Safetensors;
using Engine.Models.Binding;

namespace Engine.Fuzz;

/// <summary>
/// Weight headers (names and shapes, no data) of the tiny model fixtures, one per model class, so the
/// config target binds a fuzzed configuration against a real file header as loading does.
/// </summary>
public static class FixtureHeaders
{
    private static readonly Dictionary<string, string> FolderByClass = new(StringComparer.Ordinal)
    {
        ["UNet2DModel"] = "unet2d_tiny",
        ["UNet2DConditionModel"] = "unet2d_cond_tiny",
        ["DiTTransformer2DModel"] = "dit_tiny",
        ["Transformer2DModel"] = "dit_tiny",
        ["SD3Transformer2DModel"] = "sd3_tiny",
        ["AutoencoderKL"] = "vae_tiny",
    };

    private static readonly Dictionary<string, IWeightSource> Cache = new(StringComparer.Ordinal);

    /// <summary>The header of the fixture of <paramref name="className"/>; an empty one when there is none.</summary>
    public static IWeightSource For(string className)
    {
        lock (Cache)
        {
            if (Cache.TryGetValue(className, out var cached)) return cached;
            var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
            if (FixturesRoot() is { } root && FolderByClass.TryGetValue(className, out var folder))
            {
                string file = Path.Combine(root, "models", folder, "model", "diffusion_pytorch_model.safetensors");
                if (File.Exists(file))
                {
                    using var header = SafetensorsFile.Open(file);
                    foreach (var t in header.Tensors.Values) shapes[t.Name] = t.Shape.ToArray();
                }
            }
            return Cache[className] = new ShapeListWeightSource($"fixture header of {className}", shapes);
        }
    }

    // $ENGINE_FIXTURES, else a shared/fixtures folder beside a folder above the harness (the repository layout).
    private static string? FixturesRoot()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_FIXTURES") is { Length: > 0 } env) return env;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "shared", "fixtures");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }
}
