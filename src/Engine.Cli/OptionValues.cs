using System.Globalization;
using Engine.Core;
using Engine.Gpu;

namespace Engine.Cli;

/// <summary>
/// Parses the text of command-line option values. A malformed or out-of-range value throws a
/// <see cref="FormatException"/> whose message names the option (e.g. <c>--steps 0 must be between 1
/// and 1000.</c>); <see cref="CliOptions"/> turns it into a parse error of the command.
/// </summary>
public static class OptionValues
{
    /// <summary>Parses an integer in [min, max].</summary>
    public static int ParseInt(string text, string name, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            throw new FormatException($"{name} '{text}' is not an integer.");
        if (v < min || v > max) throw new FormatException($"{name} {v} must be between {min} and {max}.");
        return v;
    }

    /// <summary>Parses a finite number in [min, max].</summary>
    public static double ParseNumber(string text, string name, double min = double.MinValue, double max = double.MaxValue)
    {
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw new FormatException($"{name} '{text}' is not a number.");
        if (v < min || v > max) throw new FormatException($"{name} {text} must be between {min} and {max}.");
        return v;
    }

    /// <summary>Parses a non-negative 64-bit integer (a seed).</summary>
    public static ulong ParseSeed(string text, string name) =>
        ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v
            : throw new FormatException($"{name} '{text}' is not a non-negative integer.");

    /// <summary>A comma-separated list of integers in [min, max] (e.g. <c>--classes 0,1,2</c>).</summary>
    public static int[] IntList(string text, string name, int min = int.MinValue, int max = int.MaxValue)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.Any(p => p.Length == 0)) throw new FormatException($"{name} '{text}' must be a comma-separated list of integers.");
        return parts.Select(p => ParseInt(p, name, min, max)).ToArray();
    }

    /// <summary>
    /// Like <see cref="IntList"/>, but an item may also be an inclusive range FIRST:LAST or
    /// FIRST:LAST:STEP ("10:40" is every integer from 10 to 40; "10:40:5" is 10, 15, ..., 40).
    /// </summary>
    public static int[] IntRanges(string text, string name, int min, int max)
    {
        const int MaxCount = 10_000;
        var values = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split(':', StringSplitOptions.TrimEntries);
            if (part.Length == 0 || bounds.Length > 3 || bounds.Any(b => b.Length == 0))
                throw new FormatException($"{name} '{text}' must be a comma-separated list of integers or ranges FIRST:LAST[:STEP].");
            int first = ParseInt(bounds[0], name, min, max);
            if (bounds.Length == 1) { values.Add(first); continue; }
            int last = ParseInt(bounds[1], name, min, max);
            int step = bounds.Length == 3 ? ParseInt(bounds[2], $"{name} step", 1, int.MaxValue) : 1;
            if (last < first) throw new FormatException($"{name} range '{part}' ends before it starts.");
            if ((long)values.Count + ((long)last - first) / step + 1 > MaxCount) throw new FormatException($"{name} '{text}' lists more than {MaxCount} values.");
            for (long v = first; v <= last; v += step) values.Add((int)v);
        }
        return [.. values];
    }

    /// <summary>Parses a weight storage name (f32, f16, bf16; case-insensitive); <paramref name="what"/> prefixes the error.</summary>
    public static DType ParseWeightStorage(string text, string what) =>
        DTypeExtensions.TryParseStorage(text, out var dtype) ? dtype
            : throw new FormatException($"{what}: unknown weight storage '{text}'; supported: {DTypeExtensions.StorageNames}.");

    /// <summary>Parses an activation precision (f32, f16, bf16; case-insensitive); <paramref name="what"/> prefixes the error.</summary>
    public static DType ParsePrecision(string text, string what) =>
        DTypeExtensions.TryParseStorage(text, out var dtype) ? dtype
            : throw new FormatException($"{what}: unknown precision '{text}'; supported: {DTypeExtensions.StorageNames}.");

    /// <summary>Parses a compute mode (f32, bf16 or auto; case-insensitive); <paramref name="what"/> prefixes the error.</summary>
    public static ComputeMode ParseComputeMode(string text, string what) => text.Trim().ToLowerInvariant() switch
    {
        "f32" or "fp32" or "float32" => ComputeMode.F32,
        "bf16" or "bfloat16" => ComputeMode.Bf16,
        "auto" => ComputeMode.Auto,
        _ => throw new FormatException($"{what}: unknown compute precision '{text}'; supported: f32, bf16, auto."),
    };

    /// <summary>A device kind checked against the known kinds; null for <c>auto</c> (the default device).</summary>
    public static string? ParseDevice(string text)
    {
        string k = text.Trim().ToLowerInvariant();
        if (k != "auto" && !DeviceList.IsKnown(k))
            throw new FormatException($"unknown device '{text}'; supported: {string.Join(", ", DeviceFactory.Kinds)}, cuda:N or opencl:N (or auto).");
        return k == "auto" ? null : k;
    }
}
