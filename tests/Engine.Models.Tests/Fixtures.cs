using System.Text.Json;
using Engine.Core.Safetensors;

namespace Engine.Models.Tests;

/// <summary>
/// Locates the golden fixtures: <c>ENGINE_FIXTURES</c>, else <c>../shared/fixtures</c> above the
/// repository. Tests that need them call <see cref="RequireRoot"/>, which skips with a clear message
/// when they are absent.
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
            var candidate = Path.Combine(dir.FullName, "..", "shared", "fixtures");
            if (File.Exists(Path.Combine(dir.FullName, "Engine.sln")) && Directory.Exists(candidate)) return Path.GetFullPath(candidate);
        }
        return null;
    }

    /// <summary>The shared Fashion-MNIST models folder beside the fixtures, or null.</summary>
    public static string? SharedModels => Root is null ? null : Path.GetFullPath(Path.Combine(Root, "..", "models"));

    public static string RequireRoot()
    {
        if (Root is null) Assert.Ignore("Golden fixtures not found: set ENGINE_FIXTURES or place them at ../shared/fixtures.");
        return Root!;
    }

    /// <summary>Names (without extension) of the fixtures in a subfolder, for TestCaseSource; empty when absent.</summary>
    public static IEnumerable<string> Names(string folder, string pattern = "*.json") =>
        Root is null || !Directory.Exists(Path.Combine(Root, folder)) ? [] :
        Directory.GetFiles(Path.Combine(Root, folder), pattern).Select(Path.GetFileNameWithoutExtension).Order().Cast<string>();

    /// <summary>Subfolder names of a fixture folder, for TestCaseSource; empty when absent.</summary>
    public static IEnumerable<string> Folders(string folder) =>
        Root is null || !Directory.Exists(Path.Combine(Root, folder)) ? [] :
        Directory.GetDirectories(Path.Combine(Root, folder)).Select(Path.GetFileName).Order().Cast<string>();

    public static JsonElement Json(string relativePath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(RequireRoot(), relativePath)));
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
