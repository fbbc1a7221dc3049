using System.Globalization;
using System.Text.Json;

namespace Engine.Models;

/// <summary>
/// A diffusers <c>config.json</c>: typed reads with the class's defaults (an absent key takes the
/// default; an explicit JSON null means None, as in Python), and errors that name the file, the key
/// and what is accepted.
/// </summary>
public sealed class ModelConfig
{
    /// <summary>The configuration file name diffusers writes.</summary>
    public const string FileName = "config.json";

    private readonly JsonElement _root;

    /// <summary>Wraps a parsed configuration object; <paramref name="path"/> is used in messages.</summary>
    public ModelConfig(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{path}: the configuration must be a JSON object.");
        _root = root.Clone();
        Path = path;
        ClassName = _root.TryGetProperty("_class_name", out var c) && c.ValueKind == JsonValueKind.String ? c.GetString()! : "";
    }

    /// <summary>Where the configuration came from.</summary>
    public string Path { get; }

    /// <summary>The <c>_class_name</c> entry ("" when absent).</summary>
    public string ClassName { get; }

    /// <summary>
    /// The most parameters a network built from this configuration may declare: the tensor count of the
    /// weights it will bind to (see <see cref="WithParameterLimit"/>), unbounded by default.
    /// </summary>
    public int ParameterLimit { get; private init; } = int.MaxValue;

    /// <summary>The same configuration, limited to <paramref name="limit"/> parameters (the weights' tensor count).</summary>
    public ModelConfig WithParameterLimit(int limit) => new(_root, Path) { ParameterLimit = limit };

    /// <summary>The raw JSON object.</summary>
    public JsonElement Root => _root;

    /// <summary>Reads and parses a config.json file.</summary>
    public static ModelConfig Load(string path)
    {
        if (Directory.Exists(path)) throw new ModelLoadException($"{path}: is a folder; expected the configuration file (JSON).");
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: configuration file not found.", ModelLoadFailure.NotFound);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            return new ModelConfig(doc.RootElement, path);
        }
        catch (JsonException e) { throw new ModelLoadException($"{path}: not valid JSON: {e.Message}", e); }
    }

    /// <summary>Parses configuration JSON text (for configurations that do not live in a file).</summary>
    public static ModelConfig Parse(string json, string description)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return new ModelConfig(doc.RootElement, description);
        }
        catch (JsonException e) { throw new ModelLoadException($"{description}: not valid JSON: {e.Message}", e); }
    }

    /// <summary>Whether <paramref name="key"/> is present with a non-null value.</summary>
    public bool Has(string key) => _root.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    private bool TryGet(string key, out JsonElement value, out bool isNull)
    {
        isNull = false;
        if (!_root.TryGetProperty(key, out value)) return false;
        isNull = value.ValueKind == JsonValueKind.Null;
        return true;
    }

    /// <summary>An integer; <paramref name="fallback"/> when absent; null when explicitly null.</summary>
    public int? IntOrNull(string key, int? fallback)
    {
        if (!TryGet(key, out var v, out bool isNull)) return fallback;
        if (isNull) return null;
        return AsInt(key, v);
    }

    /// <summary>An integer that must not be null.</summary>
    public int Int(string key, int fallback) => IntOrNull(key, fallback) ?? throw Bad(key, "null", "an integer");

    /// <summary>A number; <paramref name="fallback"/> when absent or null.</summary>
    public double Number(string key, double fallback)
    {
        if (!TryGet(key, out var v, out bool isNull) || isNull) return fallback;
        if (v.ValueKind != JsonValueKind.Number) throw Bad(key, v.GetRawText(), "a number");
        double d = v.GetDouble();
        if (ConfigRanges.Number(key) is (double min, double max) && !(d >= min && d <= max))
            throw Bad(key, v.GetRawText(), $"a number from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}");
        return d;
    }

    /// <summary>A boolean; <paramref name="fallback"/> when absent or null.</summary>
    public bool Bool(string key, bool fallback)
    {
        if (!TryGet(key, out var v, out bool isNull) || isNull) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Bad(key, v.GetRawText(), "true or false"),
        };
    }

    /// <summary>A string; <paramref name="fallback"/> when absent; null when explicitly null.</summary>
    public string? String(string key, string? fallback)
    {
        if (!TryGet(key, out var v, out bool isNull)) return fallback;
        if (isNull) return null;
        if (v.ValueKind != JsonValueKind.String) throw Bad(key, v.GetRawText(), "a string");
        return v.GetString();
    }

    /// <summary>A list of integers (or one integer, repeated <paramref name="count"/> times when count is given).</summary>
    public int[] IntList(string key, int[] fallback, int? count = null)
    {
        if (!TryGet(key, out var v, out bool isNull) || isNull) return Check(key, fallback, count);
        if (v.ValueKind == JsonValueKind.Number && count is int n) return Enumerable.Repeat(AsInt(key, v), n).ToArray();
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v.GetRawText(), count is null ? "a list of integers" : "an integer or a list of integers");
        return Check(key, v.EnumerateArray().Select(e => AsInt(key, e)).ToArray(), count);
    }

    /// <summary>A list of booleans (or one boolean, repeated <paramref name="count"/> times).</summary>
    public bool[] BoolList(string key, bool fallback, int count)
    {
        if (!TryGet(key, out var v, out bool isNull) || isNull) return Enumerable.Repeat(fallback, count).ToArray();
        if (v.ValueKind is JsonValueKind.True or JsonValueKind.False) return Enumerable.Repeat(v.GetBoolean(), count).ToArray();
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v.GetRawText(), "a boolean or a list of booleans");
        var list = v.EnumerateArray().Select(e => e.ValueKind is JsonValueKind.True or JsonValueKind.False ? e.GetBoolean() : throw Bad(key, v.GetRawText(), "a list of booleans")).ToArray();
        if (list.Length != count) throw Bad(key, v.GetRawText(), $"{count} entries (one per block)");
        return list;
    }

    /// <summary>A list of strings.</summary>
    public string[] StringList(string key, string[] fallback)
    {
        if (!TryGet(key, out var v, out bool isNull) || isNull) return fallback;
        if (v.ValueKind != JsonValueKind.Array) throw Bad(key, v.GetRawText(), "a list of strings");
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Bad(key, v.GetRawText(), "a list of strings")).ToArray();
    }

    /// <summary>Throws unless the value is one of <paramref name="supported"/> (compared as raw JSON text).</summary>
    public void RequireOneOf(string key, string fallbackJson, params string[] supported)
    {
        string raw = _root.TryGetProperty(key, out var v) ? v.GetRawText() : fallbackJson;
        if (!supported.Contains(raw)) throw Unsupported(key, raw, string.Join(", ", supported));
    }

    /// <summary>An exception for a value that is well-formed but not supported by this engine.</summary>
    public ModelLoadException Unsupported(string key, string value, string supported) =>
        new($"{Path}: {ClassName} setting '{key}' = {value} is not supported; supported: {supported}.");

    /// <summary>An exception for a malformed or out-of-range value.</summary>
    public ModelLoadException Bad(string key, string value, string expected) =>
        new($"{Path}: {ClassName} setting '{key}' = {value} is invalid; expected {expected}.");

    // Every integer read of a sized field (ConfigRanges) is bounded here, so no network sees a value out of range.
    private int AsInt(string key, JsonElement v)
    {
        var range = ConfigRanges.Integer(key);
        string expected = range is (int lo, int hi) ? $"an integer from {lo} to {hi}" : "an integer";
        int i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int exact)) i = exact;
        else if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) i = (int)d;
        else throw Bad(key, v.GetRawText(), expected);
        if (range is (int min, int max) && (i < min || i > max)) throw Bad(key, v.GetRawText(), expected);
        return i;
    }

    private int[] Check(string key, int[] list, int? count)
    {
        if (count is int n && list.Length != n) throw Bad(key, "[" + string.Join(", ", list.Select(x => x.ToString(CultureInfo.InvariantCulture))) + "]", $"{n} entries (one per block)");
        return list;
    }
}
