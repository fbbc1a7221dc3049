using System.Text.Json;
using Engine.Core.Safetensors;

namespace Engine.TestSupport;

/// <summary>
/// Locates the golden fixtures: <c>ENGINE_FIXTURES</c>, else a <c>shared/fixtures</c> folder beside
/// the repository (or further up, for nested checkouts). Tests that need them call
/// <see cref="RequireRoot"/>, which skips with a clear message when they are absent.
/// </summary>
public static class Fixtures
{
    public static string? Root { get; } = FindRoot();

    private static string? FindRoot()
    {
        var env = Environment.GetEnvironmentVariable("ENGINE_FIXTURES");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "fixtures");
            if (Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        return null;
    }

    /// <summary>The shared models folder beside the fixtures (<c>shared/models</c>), or null.</summary>
    public static string? SharedModels => Root is null ? null : Path.GetFullPath(Path.Combine(Root, "..", "models"));

    public static string RequireRoot()
    {
        if (Root is null) Assert.Ignore("Golden fixtures not found: set ENGINE_FIXTURES or place them at ../shared/fixtures.");
        return Root!;
    }

    /// <summary>Names (without extension) of the files in a fixture subfolder, for TestCaseSource; empty when absent.</summary>
    public static IEnumerable<string> Names(string folder, string pattern = "*.json") =>
        Root is null || !Directory.Exists(Path.Combine(Root, folder)) ? [] :
        Directory.GetFiles(Path.Combine(Root, folder), pattern).Select(Path.GetFileNameWithoutExtension).Order().Cast<string>();

    /// <summary>Names of the subfolders of a fixture folder; empty when absent.</summary>
    public static IEnumerable<string> Folders(string folder) =>
        Root is null || !Directory.Exists(Path.Combine(Root, folder)) ? [] :
        Directory.GetDirectories(Path.Combine(Root, folder)).Select(Path.GetFileName).Order().Cast<string>();

    /// <summary>Parses a fixture JSON file; <paramref name="preprocess"/> may rewrite the text first (e.g. Python's -Infinity).</summary>
    public static JsonElement Json(string relativePath, Func<string, string>? preprocess = null)
    {
        var text = File.ReadAllText(Path.Combine(RequireRoot(), relativePath));
        using var doc = JsonDocument.Parse(preprocess is null ? text : preprocess(text));
        return doc.RootElement.Clone();
    }

    public static SafetensorsFile Tensors(string relativePath) => SafetensorsFile.Open(Path.Combine(RequireRoot(), relativePath));

    /// <summary>max |actual - expected| / max |expected|, the relative error the fixtures are judged by.</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), "element count");
        double maxErr = 0, maxRef = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double err = Math.Abs((double)actual[i] - expected[i]);
            if (double.IsNaN(err)) return double.PositiveInfinity;
            maxErr = Math.Max(maxErr, err);
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        return maxRef == 0 ? maxErr : maxErr / maxRef;
    }
}
