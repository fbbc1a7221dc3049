using System.Text.Json;

namespace Engine.Sampling;

/// <summary>
/// Field-by-field access to the key/value pairs of a scheduler config, with errors that name the
/// field, the value and what is expected. Absent and null fields give the default. The shared
/// <see cref="SchedulerConfig"/> and each scheduler's options read their keys through it.
/// </summary>
public sealed class SchedulerConfigReader(IReadOnlyDictionary<string, JsonElement> fields, string source)
{
    /// <summary>Where the config came from (a path or "scheduler config"); prefixes every error.</summary>
    public string Source => source;

    private JsonElement? Get(string name) =>
        fields.TryGetValue(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    private SchedulerConfigException Bad(string name, JsonElement v, string expected) =>
        new($"{source}: field '{name}' = {v.GetRawText()} is invalid; expected {expected}.");

    /// <summary>A string field.</summary>
    public string Str(string name, string dflt)
    {
        if (Get(name) is not { } v) return dflt;
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad(name, v, "a string");
    }

    /// <summary>A string field restricted to <paramref name="allowed"/> (listed in that order by the error).</summary>
    public string Choice(string name, string dflt, params string[] allowed)
    {
        if (Get(name) is not { } v) return dflt;
        if (v.ValueKind != JsonValueKind.String) throw Bad(name, v, "one of " + string.Join(", ", allowed));
        var s = v.GetString()!;
        if (!allowed.Contains(s)) throw new SchedulerConfigException($"{source}: field '{name}' = '{s}' is not supported; supported: {string.Join(", ", allowed)}.");
        return s;
    }

    /// <summary>A string field with the default and allowed values of <paramref name="choice"/>.</summary>
    public string Choice(string name, FieldChoice choice) => Choice(name, choice.Default, choice.Allowed);

    /// <summary>A number field.</summary>
    public double Num(string name, double dflt) => NullableNum(name) ?? dflt;

    /// <summary>A number field, null when absent; accepts Python's infinities written as strings.</summary>
    public double? NullableNum(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
        if (v.ValueKind == JsonValueKind.String && v.GetString() is "-inf" or "-Infinity") return double.NegativeInfinity;
        if (v.ValueKind == JsonValueKind.String && v.GetString() is "inf" or "Infinity") return double.PositiveInfinity;
        throw Bad(name, v, "a number");
    }

    /// <summary>A 32-bit integer field.</summary>
    public int Int(string name, int dflt)
    {
        if (Get(name) is not { } v) return dflt;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad(name, v, "an integer");
    }

    /// <summary>A boolean field.</summary>
    public bool Bool(string name, bool dflt)
    {
        if (Get(name) is not { } v) return dflt;
        return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad(name, v, "true or false") };
    }

    /// <summary>An array of numbers, null when absent.</summary>
    public double[]? NumArray(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) throw Bad(name, v, "an array of numbers");
        var list = new List<double>();
        foreach (var x in v.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.Number ? x.GetDouble() : throw Bad(name, x, "numbers only"));
        return [.. list];
    }

    /// <summary>An array of integers, null when absent.</summary>
    public int[]? IntArray(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Array) throw Bad(name, v, "an array of integers");
        var list = new List<int>();
        foreach (var x in v.EnumerateArray())
            list.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int i) ? i : throw Bad(name, x, "integers only"));
        return [.. list];
    }
}
