namespace Engine.Gpu;

/// <summary>
/// A list of devices to run workers on, as <c>--device</c> takes it: entries separated by commas, each a kind
/// (<c>cpu</c>, <c>cuda</c>, <c>opencl</c>, <c>ilgpu-cpu</c>), a CUDA or OpenCL device by index (<c>cuda:1</c>), or
/// every device of the kind (<c>cuda:all</c>). A kind may repeat (<c>cpu,cpu</c>: two CPU workers).
/// </summary>
public static class DeviceList
{
    /// <summary>
    /// The entries of <paramref name="text"/>, lowercased, <c>:all</c> expanded through <paramref name="count"/>
    /// (by default the devices ILGPU finds). Throws <see cref="FormatException"/> naming the entry for a bad one.
    /// </summary>
    public static IReadOnlyList<string> Parse(string text, Func<string, int>? count = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        count ??= IlgpuDevice.Count;
        var result = new List<string>();
        foreach (string raw in text.Split(','))
        {
            string entry = raw.Trim().ToLowerInvariant();
            if (entry.Length == 0) throw new FormatException($"'{text}': an empty entry in the device list.");
            if (entry.EndsWith(":all", StringComparison.Ordinal))
            {
                string kind = entry[..^4];
                if (kind is not ("cuda" or "opencl")) throw new FormatException($"'{raw.Trim()}': only cuda:all and opencl:all list several devices.");
                int n = count(kind);
                if (n == 0) throw new FormatException($"'{raw.Trim()}': no {kind} device was found.");
                for (int i = 0; i < n; i++) result.Add($"{kind}:{i}");
            }
            else if (IsKnown(entry)) result.Add(entry);
            else throw new FormatException($"unknown device '{raw.Trim()}'; supported: {string.Join(", ", DeviceFactory.Kinds)}, cuda:N or opencl:N, cuda:all or opencl:all.");
        }
        var twice = result.Where(e => e.Contains(':')).GroupBy(e => e).FirstOrDefault(g => g.Count() > 1);
        if (twice is not null) throw new FormatException($"'{text}': device {twice.Key} is listed twice.");
        return result;
    }

    /// <summary>Whether <paramref name="entry"/> names one device: a kind, or <c>cuda:N</c> / <c>opencl:N</c>.</summary>
    public static bool IsKnown(string entry) =>
        DeviceFactory.Kinds.Contains(entry) || Split(entry) is ("cuda" or "opencl", _);

    /// <summary>The kind of an entry (<c>cuda</c> for <c>cuda:1</c>).</summary>
    public static string KindOf(string entry) => entry.Split(':')[0];

    /// <summary><c>kind:N</c> as (kind, N), or null when the entry has no whole-number index.</summary>
    public static (string Kind, int Index)? Split(string entry)
    {
        int colon = entry.IndexOf(':');
        if (colon <= 0 || !int.TryParse(entry.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int index))
            return null;
        return (entry[..colon], index);
    }
}
