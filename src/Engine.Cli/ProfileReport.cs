using Engine.Core.Profiling;
using Engine.Imaging;

namespace Engine.Cli;

/// <summary>Writes an <see cref="OpProfile"/> as JSON with what was run and the machine's load at the time.</summary>
public static class ProfileReport
{
    /// <summary>
    /// Writes <paramref name="profile"/> to <paramref name="path"/> (atomically) with <paramref name="context"/> plus the
    /// processor count and, where the system reports it, the 1/5/15-minute load average: on a shared machine the
    /// wall times are upper bounds and the load says by how much.
    /// </summary>
    public static void WriteJson(string path, OpProfile profile, IReadOnlyDictionary<string, string> context)
    {
        var all = new Dictionary<string, string>(context) { ["processors"] = Environment.ProcessorCount.ToString() };
        if (LoadAverage() is { } load) all["load_average"] = load;
        AtomicFile.WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(profile.ToJson(all) + "\n"));
    }

    /// <summary>The first three fields of /proc/loadavg, or null where there is none.</summary>
    public static string? LoadAverage()
    {
        try
        {
            var fields = File.ReadAllText("/proc/loadavg").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return fields.Length >= 3 ? string.Join(' ', fields.Take(3)) : null;
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
