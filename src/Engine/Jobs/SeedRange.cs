using System.Globalization;

namespace Engine.Jobs;

/// <summary>
/// Parses seed lists such as <c>"7"</c>, <c>"0-63"</c> (inclusive) or <c>"0-3,10,20-21"</c>.
/// </summary>
public static class SeedRange
{
    /// <summary>Most seeds one job may expand to, so a typo cannot exhaust memory.</summary>
    public const int MaxSeeds = 1_000_000;

    /// <summary>Appends the seeds <paramref name="text"/> denotes to <paramref name="seeds"/>; throws <see cref="FormatException"/> naming the bad part.</summary>
    public static void Parse(string text, List<ulong> seeds)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Trim().Length == 0) throw new FormatException("empty seed list");
        foreach (var rawPart in text.Split(','))
        {
            string part = rawPart.Trim();
            int dash = part.IndexOf('-', 1 < part.Length ? 1 : 0);
            if (part.Length == 0) throw new FormatException($"empty item in seed list '{text}'");
            if (dash < 0)
            {
                seeds.Add(ParseOne(part, text));
            }
            else
            {
                ulong first = ParseOne(part[..dash].Trim(), text), last = ParseOne(part[(dash + 1)..].Trim(), text);
                if (last < first) throw new FormatException($"seed range '{part}' ends before it starts");
                if (last - first >= (ulong)(MaxSeeds - seeds.Count)) throw new FormatException($"seed range '{part}' has more than {MaxSeeds} seeds");
                for (ulong s = first; ; s++) { seeds.Add(s); if (s == last) break; }
            }
            if (seeds.Count > MaxSeeds) throw new FormatException($"seed list '{text}' has more than {MaxSeeds} seeds");
        }
    }

    /// <summary>The seeds <paramref name="text"/> denotes.</summary>
    public static ulong[] Parse(string text)
    {
        var seeds = new List<ulong>();
        Parse(text, seeds);
        return [.. seeds];
    }

    private static ulong ParseOne(string s, string whole) =>
        ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
            ? v
            : throw new FormatException($"'{s}' in seed list '{whole}' is not a non-negative integer");
}
