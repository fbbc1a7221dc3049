using System.Globalization;

namespace Engine.Models.Tests;

/// <summary>
/// Reads the arguments of the Python constructor call a fixture JSON records (e.g.
/// <c>ResnetBlock2D(in_channels=32, groups=8, eps=1e-05)(x, temb)</c>): positional and keyword
/// arguments of the first call, split at top-level commas.
/// </summary>
public sealed class CallArguments
{
    private CallArguments(List<string> positional, Dictionary<string, string> named)
    {
        Positional = positional;
        Named = named;
    }

    public IReadOnlyList<string> Positional { get; }

    public IReadOnlyDictionary<string, string> Named { get; }

    /// <summary>Parses the arguments of the first call to <paramref name="function"/> in <paramref name="call"/>.</summary>
    public static CallArguments Parse(string call, string function)
    {
        int start = call.IndexOf(function + "(", StringComparison.Ordinal);
        if (start < 0) throw new FormatException($"'{function}(' not found in '{call}'.");
        int i = start + function.Length + 1, depth = 0;
        var parts = new List<string>();
        var current = new System.Text.StringBuilder();
        for (; i < call.Length; i++)
        {
            char ch = call[i];
            if (ch is '(' or '[') depth++;
            if (ch is ')' or ']')
            {
                if (depth == 0) break;
                depth--;
            }
            if (ch == ',' && depth == 0) { parts.Add(current.ToString().Trim()); current.Clear(); continue; }
            current.Append(ch);
        }
        if (current.ToString().Trim().Length > 0) parts.Add(current.ToString().Trim());
        var positional = new List<string>();
        var named = new Dictionary<string, string>();
        foreach (var p in parts)
        {
            int eq = p.IndexOf('=');
            if (eq > 0 && !p[..eq].Contains('(')) named[p[..eq].Trim()] = p[(eq + 1)..].Trim().Trim('\'', '"');
            else positional.Add(p);
        }
        return new CallArguments(positional, named);
    }

    public int Int(string name, int position, int? fallback = null) =>
        Named.TryGetValue(name, out var v) ? int.Parse(v, CultureInfo.InvariantCulture)
        : position >= 0 && position < Positional.Count ? int.Parse(Positional[position], CultureInfo.InvariantCulture)
        : fallback ?? throw new FormatException($"argument '{name}' missing");

    public float Float(string name, float fallback) =>
        Named.TryGetValue(name, out var v) ? float.Parse(v, CultureInfo.InvariantCulture) : fallback;

    public string String(string name, string fallback) => Named.TryGetValue(name, out var v) ? v : fallback;
}
