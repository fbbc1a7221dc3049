using System.Text.Json;
using System.Text.RegularExpressions;

namespace Engine.Cli;

/// <summary>
/// Says which sidecar field has a value of the wrong JSON type, and what it takes, instead of the serializer's
/// message (".NET type names, byte positions").
/// </summary>
public static partial class SidecarJson
{
    /// <summary>The most inference steps a sidecar may record (as <c>generate --steps</c>).</summary>
    public const int MaxSteps = 1000;

    /// <summary>A one-line description of <paramref name="e"/>, raised while reading sidecar text <paramref name="json"/>.</summary>
    public static string Describe(JsonException e, string json)
    {
        if (e.Path is not { Length: > 2 } where || !where.StartsWith("$.", StringComparison.Ordinal) || TargetType().Match(e.Message) is not { Success: true } m)
            return $"not an image sidecar: {e.Message}";
        string field = where[2..];
        string value = TopLevelValue(json, field) is { } raw ? $" = {raw}" : "";
        return $"field '{field}'{value} is invalid; expected {Expected(m.Groups[1].Value)}.";
    }

    private static string Expected(string type) => type switch
    {
        _ when type.Contains("UInt64") => $"an integer from 0 to {ulong.MaxValue}",
        _ when type.EndsWith("[]", StringComparison.Ordinal) && type.Contains("Int32") => "a list of integers",
        _ when type.EndsWith("[]", StringComparison.Ordinal) && type.Contains("String") => "a list of strings",
        _ when type.EndsWith("SidecarLora[]", StringComparison.Ordinal) => "a list of {\"file\", \"scale\", \"sha256\"} objects",
        _ when type.EndsWith("SidecarLora", StringComparison.Ordinal) => "a string 'file', a number 'scale' and a string 'sha256'",
        _ when type.Contains("Int32") || type.Contains("Int64") => "an integer",
        _ when type.Contains("Double") || type.Contains("Single") => "a number",
        _ when type.Contains("Boolean") => "true or false",
        _ when type.Contains("String") => "a string",
        _ => "another JSON type",
    };

    // The raw JSON of a top-level field (field names with '.' or '[' are nested: no value shown).
    private static string? TopLevelValue(string json, string field)
    {
        if (field.IndexOfAny(['.', '[']) >= 0) return null;
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty(field, out var v) ? Shorten(v.GetRawText()) : null;
        }
        catch (JsonException) { return null; }
    }

    private static string Shorten(string raw) => raw.Length <= 60 ? raw : raw[..57] + "...";

    [GeneratedRegex(@"could not be converted to (\S+?)\. Path:")]
    private static partial Regex TargetType();
}
