using System.Globalization;
using Engine.Core;

namespace Engine.Cli;

/// <summary>Typed values of command-line options; a malformed or out-of-range value is a usage error naming the option.</summary>
public static class OptionValues
{
    /// <summary>An integer option in [min, max], or <paramref name="fallback"/> when absent.</summary>
    public static int Int(CommandArguments args, string name, string command, int fallback, int min = int.MinValue, int max = int.MaxValue) =>
        args.Get(name) is { } text ? ParseInt(text, name, command, min, max) : fallback;

    /// <summary>Parses an integer in [min, max].</summary>
    public static int ParseInt(string text, string name, string command, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!int.TryParse(text.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v))
            throw new UsageException($"{command}: {name} '{text}' is not an integer.");
        if (v < min || v > max) throw new UsageException($"{command}: {name} {v} must be between {min} and {max}.");
        return v;
    }

    /// <summary>A finite number option in [min, max], or <paramref name="fallback"/> when absent.</summary>
    public static double Number(CommandArguments args, string name, string command, double fallback, double min = double.MinValue, double max = double.MaxValue)
    {
        if (args.Get(name) is not { } text) return fallback;
        if (!double.TryParse(text.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
            throw new UsageException($"{command}: {name} '{text}' is not a number.");
        if (v < min || v > max) throw new UsageException($"{command}: {name} {text} must be between {min} and {max}.");
        return v;
    }

    /// <summary>A non-negative 64-bit integer option (a seed), or <paramref name="fallback"/> when absent.</summary>
    public static ulong Seed(CommandArguments args, string name, string command, ulong fallback)
    {
        if (args.Get(name) is not { } text) return fallback;
        return ulong.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v
            : throw new UsageException($"{command}: {name} '{text}' is not a non-negative integer.");
    }

    /// <summary>A comma-separated list of integers in [min, max] (e.g. <c>--classes 0,1,2</c>).</summary>
    public static int[] IntList(string text, string name, string command, int min = int.MinValue, int max = int.MaxValue)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length == 0 || parts.Any(p => p.Length == 0)) throw new UsageException($"{command}: {name} '{text}' must be a comma-separated list of integers.");
        return parts.Select(p => ParseInt(p, name, command, min, max)).ToArray();
    }

    /// <summary>
    /// Like <see cref="IntList"/>, but an item may also be an inclusive range FIRST:LAST or
    /// FIRST:LAST:STEP ("10:40" is every integer from 10 to 40; "10:40:5" is 10, 15, ..., 40).
    /// </summary>
    public static int[] IntRanges(string text, string name, string command, int min, int max)
    {
        const int MaxCount = 10_000;
        var values = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var bounds = part.Split(':', StringSplitOptions.TrimEntries);
            if (part.Length == 0 || bounds.Length > 3 || bounds.Any(b => b.Length == 0))
                throw new UsageException($"{command}: {name} '{text}' must be a comma-separated list of integers or ranges FIRST:LAST[:STEP].");
            int first = ParseInt(bounds[0], name, command, min, max);
            if (bounds.Length == 1) { values.Add(first); continue; }
            int last = ParseInt(bounds[1], name, command, min, max);
            int step = bounds.Length == 3 ? ParseInt(bounds[2], $"{name} step", command, 1, int.MaxValue) : 1;
            if (last < first) throw new UsageException($"{command}: {name} range '{part}' ends before it starts.");
            if ((long)values.Count + ((long)last - first) / step + 1 > MaxCount) throw new UsageException($"{command}: {name} '{text}' lists more than {MaxCount} values.");
            for (long v = first; v <= last; v += step) values.Add((int)v);
        }
        return [.. values];
    }

    /// <summary>The weight storage of <c>--weights</c> (f32, f16 or bf16); F32 when absent.</summary>
    public static DType WeightStorage(CommandArguments args, string command) => args.Get("--weights") is { } text ? ParseWeightStorage(text, $"{command}: --weights") : DType.F32;

    /// <summary>Parses a weight storage name (f32, f16, bf16; case-insensitive); <paramref name="what"/> prefixes the error.</summary>
    public static DType ParseWeightStorage(string text, string what) =>
        DTypeExtensions.TryParseStorage(text, out var dtype) ? dtype
            : throw new UsageException($"{what}: unknown weight storage '{text}'; supported: {DTypeExtensions.StorageNames}.");

    /// <summary>The device kind of <c>--device</c>, checked against the known kinds; null when absent.</summary>
    public static string? Device(CommandArguments args, string command)
    {
        var kind = args.Get("--device");
        if (kind is null) return null;
        string k = kind.Trim().ToLowerInvariant();
        if (k != "auto" && !DeviceFactory.Kinds.Contains(k))
            throw new UsageException($"{command}: unknown device '{kind}'; supported: {string.Join(", ", DeviceFactory.Kinds)} (or auto).");
        return k == "auto" ? null : k;
    }
}
