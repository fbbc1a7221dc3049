using System.Security.Cryptography;

namespace Engine.Jobs.Sharding;

/// <summary>
/// The state of a batch output folder: the <see cref="BatchRunRecord"/> says which images each job line makes, the
/// shard manifests say which were made (or failed), and every listed PNG is verified on disk against its manifest's
/// size and SHA-256 and by <c>problem</c> (its sidecar, a full decode). An image is done when some manifest lists it
/// and its file verifies, failed when its last entry is a failure, and missing otherwise (never made, or damaged).
/// </summary>
public static class BatchStatus
{
    /// <summary>Reads and verifies <paramref name="folder"/>; throws <see cref="InvalidDataException"/> when it holds no run record.</summary>
    public static BatchReport Check(string folder, Func<string, string?> problem)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(problem);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: folder does not exist.");
        var record = BatchRunRecord.Read(folder)
            ?? throw new InvalidDataException($"{folder}: no {BatchRunRecord.FileName}; not an output folder of 'engine batch' (or written before manifests existed).");
        var manifests = ShardManifest.ReadAll(folder);
        var notes = manifests.SelectMany(m => m.Problems).ToList();
        var byImage = new Dictionary<(int Line, int Index), List<ManifestEntry>>();
        var expected = record.Lines.ToDictionary(l => l.Line);
        foreach (var (file, entries, _) in manifests)
            foreach (var e in entries)
            {
                if (!expected.TryGetValue(e.Line, out var line) || e.Index >= line.Images)
                {
                    notes.Add($"{file}: line {e.Line} image {e.Index} is not an image of the job file; ignored");
                    continue;
                }
                if (!byImage.TryGetValue((e.Line, e.Index), out var list)) byImage[(e.Line, e.Index)] = list = [];
                list.Add(e);
            }

        var verified = new Dictionary<string, string?>(StringComparer.Ordinal);
        var lines = new List<LineReport>();
        foreach (var line in record.Lines)
        {
            var report = new LineReport(line.Line, line.Images, line.Error);
            for (int i = 0; i < line.Images; i++)
            {
                if (!byImage.TryGetValue((line.Line, i), out var entries))
                {
                    report.Missing.Add($"image {i}: not made yet");
                    continue;
                }
                string? damage = null;
                bool done = false;
                foreach (var e in Enumerable.Reverse(entries).Where(e => e.Done))
                {
                    string path = Path.Combine(folder, e.File!);
                    string key = $"{path}|{e.Size}|{e.Sha256}";
                    if (!verified.TryGetValue(key, out damage)) verified[key] = damage = Verify(path, e, problem);
                    if (damage is null) { done = true; break; }
                }
                if (done) report.Done++;
                else if (entries[^1] is { Done: false } failure) report.Failed.Add($"image {i} (seed {failure.Seed}): {failure.Error}");
                else report.Missing.Add($"image {i}: {entries.Last(e => e.Done).File} is damaged ({damage})");
            }
            lines.Add(report);
        }
        return new BatchReport(record, manifests.Select(m => m.File).ToList(), lines, notes);
    }

    private static string? Verify(string path, ManifestEntry entry, Func<string, string?> problem)
    {
        var info = new FileInfo(path);
        if (!info.Exists) return "the file is missing";
        if (info.Length != entry.Size) return $"{info.Length} bytes where the manifest records {entry.Size}";
        string sha;
        using (var stream = info.OpenRead()) sha = Convert.ToHexStringLower(SHA256.HashData(stream));
        if (!string.Equals(sha, entry.Sha256, StringComparison.OrdinalIgnoreCase)) return "its SHA-256 does not match the manifest";
        return problem(path);
    }
}

/// <summary>The state of a batch output folder (<see cref="BatchStatus.Check"/>).</summary>
/// <param name="Record">The run record of the folder.</param>
/// <param name="Manifests">The shard manifests read.</param>
/// <param name="Lines">One report per job line of the folder, in file order.</param>
/// <param name="Notes">Manifest lines that did not read or name no image of the job file.</param>
public sealed record BatchReport(BatchRunRecord Record, IReadOnlyList<string> Manifests, IReadOnlyList<LineReport> Lines, IReadOnlyList<string> Notes)
{
    /// <summary>Images the job lines make.</summary>
    public int Expected => Lines.Sum(l => l.Images);

    /// <summary>Images done and verified.</summary>
    public int Done => Lines.Sum(l => l.Done);

    /// <summary>Whether every image is done and no line is bad.</summary>
    public bool Complete => Done == Expected && Lines.All(l => l.Error is null);
}

/// <summary>One job line's images in a <see cref="BatchReport"/>.</summary>
/// <param name="Line">1-based line of the job file.</param>
/// <param name="Images">Images the line makes.</param>
/// <param name="Error">Why the line could not be read (it makes no image), or null.</param>
public sealed record LineReport(int Line, int Images, string? Error)
{
    /// <summary>Images done and verified.</summary>
    public int Done { get; set; }

    /// <summary>Images whose last attempt failed, with the reason.</summary>
    public List<string> Failed { get; } = [];

    /// <summary>Images not made or damaged, with the reason.</summary>
    public List<string> Missing { get; } = [];
}
