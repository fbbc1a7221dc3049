using System.Text;

namespace Engine.Jobs.Sharding;

/// <summary>
/// A shard's manifest in one output folder, <c>shard-K-of-N.jsonl</c>: one <see cref="ManifestEntry"/> per image,
/// appended as each image is written (or fails), so a shard stopped part-way leaves what it made listed. Only the
/// shard itself writes its manifest; its workers share this object. A re-run appends; the last entry of an image wins.
/// </summary>
public sealed class ShardManifest
{
    private readonly Lock _gate = new();

    /// <summary>The manifest of <paramref name="shard"/> in <paramref name="folder"/> (created on the first append).</summary>
    public ShardManifest(string folder, ShardSpec shard)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(shard);
        Path = System.IO.Path.Combine(folder, shard.ManifestName);
    }

    /// <summary>The manifest file.</summary>
    public string Path { get; }

    /// <summary>Appends one entry as a whole line, flushed to disk before returning.</summary>
    public void Append(ManifestEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        byte[] bytes = Encoding.UTF8.GetBytes(entry.ToJsonLine() + "\n");
        lock (_gate)
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
            using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write, FileShare.Read);
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>The entries of this manifest that read (none when it does not exist yet).</summary>
    public IReadOnlyList<ManifestEntry> Entries() => Read(Path).Entries;

    /// <summary>
    /// The manifests (<c>shard-*-of-*.jsonl</c>) in <paramref name="folder"/>, each with its entries in file order and
    /// the lines that did not read (a line cut short by a killed process, for instance) as <c>file:line: why</c>.
    /// </summary>
    public static IReadOnlyList<(string File, IReadOnlyList<ManifestEntry> Entries, IReadOnlyList<string> Problems)> ReadAll(string folder) =>
        Directory.Exists(folder)
            ? Directory.GetFiles(folder, "shard-*-of-*.jsonl").Order(StringComparer.Ordinal).Select(f => { var (e, p) = Read(f); return (f, e, p); }).ToList()
            : [];

    private static (IReadOnlyList<ManifestEntry> Entries, IReadOnlyList<string> Problems) Read(string file)
    {
        if (!File.Exists(file)) return ([], []);
        var entries = new List<ManifestEntry>();
        var problems = new List<string>();
        int number = 0;
        foreach (string line in File.ReadLines(file))
        {
            number++;
            if (line.Trim().Length == 0) continue;
            try { entries.Add(ManifestEntry.Parse(line)); }
            catch (FormatException e) { problems.Add($"{file}:{number}: {e.Message}"); }
        }
        return (entries, problems);
    }
}
