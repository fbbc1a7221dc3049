using System.Collections.Concurrent;
using System.Text.Json;
using Engine.Jobs;
using Engine.Jobs.Sharding;

namespace Engine.Cli.Sharding;

/// <summary>
/// What one <c>engine batch</c> process makes of a job file: its shard, the slot of every image
/// (<see cref="ShardAssignment"/>), which of its workers makes which image, and the shard's manifest in each
/// output folder. Created before any work: it claims every output folder of the file with the run record, so a
/// folder of another job file is refused before a model loads.
/// </summary>
public sealed class ShardPlan
{
    private readonly int[][] _slots;
    private readonly Func<GenerationJob, string> _folder;
    private readonly ConcurrentDictionary<string, (ShardManifest Manifest, HashSet<string> Listed)> _manifests = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(int Line, int Index), bool> _made = new();

    private ShardPlan(ShardSpec shard, int workers, IReadOnlyList<GenerationJob> jobs, int[][] slots, Func<GenerationJob, string> folder)
    {
        Shard = shard; Workers = workers; Jobs = jobs; _slots = slots; _folder = folder;
    }

    /// <summary>This process's shard.</summary>
    public ShardSpec Shard { get; }

    /// <summary>Workers (devices) of this process.</summary>
    public int Workers { get; }

    /// <summary>The valid jobs of the file, in order.</summary>
    public IReadOnlyList<GenerationJob> Jobs { get; }

    /// <summary>
    /// Plans <paramref name="file"/> for <paramref name="shard"/> with <paramref name="workers"/> workers; lines without
    /// <c>out</c> write to <paramref name="defaultOut"/>. Claims every output folder (<see cref="BatchRunRecord.Claim"/>).
    /// </summary>
    public static ShardPlan Create(JobFileResult file, string jobPath, string defaultOut, ShardSpec shard, int workers)
    {
        string Folder(GenerationJob job) => job.Out ?? defaultOut;
        var slots = ShardAssignment.Slots(file.Jobs, Folder);
        var plan = new ShardPlan(shard, workers, file.Jobs, slots, Folder);
        string sha = BatchRunRecord.Sha256Of(jobPath);
        string full = Path.GetFullPath(jobPath);
        var lines = new Dictionary<string, List<RecordedLine>>(StringComparer.Ordinal);
        void Add(string folder, RecordedLine line)
        {
            string key = Path.GetFullPath(folder);
            if (!lines.TryGetValue(key, out var list)) lines[key] = list = [];
            list.Add(line);
        }
        foreach (var job in file.Jobs) Add(Folder(job), new RecordedLine(job.Line, job.Count, null));
        // A bad line has no folder of its own: every folder the file writes lists it (a file of bad lines alone claims none).
        foreach (var list in lines.Values) list.AddRange(file.Errors.Select(e => new RecordedLine(e.Line, 0, e.Message)));
        foreach (var (folder, list) in lines)
        {
            // A folder that cannot be made (a file on its path, no write access) is not claimed: its jobs fail on
            // their own, before they sample, with the error naming their 'out' (BatchCommand checks it per job).
            try { OutputPaths.RequireWritableFolder(folder, "out"); }
            catch (IOException) { continue; }
            new BatchRunRecord(full, sha, list.OrderBy(l => l.Line).ToList()).Claim(folder);
        }
        return plan;
    }

    /// <summary>Images of this shard (all workers).</summary>
    public int ImageCount => _slots.Sum(s => s.Count(Shard.Owns));

    /// <summary>Images of <paramref name="worker"/> in this shard.</summary>
    public int ImagesOf(int worker) => _slots.Sum(s => s.Count(slot => Shard.Owns(slot) && ShardAssignment.Worker(slot, Shard, Workers) == worker));

    /// <summary>Whether image <paramref name="index"/> of <paramref name="job"/> is made by <paramref name="worker"/> of this shard.</summary>
    public bool Mine(GenerationJob job, int index, int worker)
    {
        int slot = _slots[IndexOf(job)][index];
        return Shard.Owns(slot) && ShardAssignment.Worker(slot, Shard, Workers) == worker;
    }

    /// <summary>Lists an image found whole on disk in the manifest, unless the manifest already lists that file with that checksum.</summary>
    public void RecordExisting(GenerationJob job, JobImage image) => Record(job, image, onlyIfNew: true);

    /// <summary>Lists an image just written (its file, size, SHA-256 and request, from its sidecar).</summary>
    public void RecordWritten(GenerationJob job, JobImage image) => Record(job, image, onlyIfNew: false);

    /// <summary>Lists every image of <paramref name="worker"/> in <paramref name="job"/> not made in this run as failed with <paramref name="error"/>.</summary>
    public void RecordFailure(GenerationJob job, int worker, string error)
    {
        try
        {
            var (manifest, _) = ManifestFor(job);
            foreach (var image in job.Images())
                if (Mine(job, image.Index, worker) && !_made.ContainsKey((job.Line, image.Index)))
                    manifest.Append(new ManifestEntry(job.Line, image.Index, image.Seed, null, null, null, null, error));
        }
        // A job that failed because its folder cannot be written cannot list its failure there either; the
        // failure has been reported on stderr, and the other jobs go on.
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    private void Record(GenerationJob job, JobImage image, bool onlyIfNew)
    {
        var (manifest, listed) = ManifestFor(job);
        string png = Path.Combine(_folder(job), image.FileName);
        var sidecar = ImageSidecar.Read(ImageSidecar.PathFor(png));
        long size = sidecar.PngSize ?? new FileInfo(png).Length;
        string sha = sidecar.PngSha256 ?? Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(png)));
        _made[(job.Line, image.Index)] = true;
        lock (listed)
        {
            if (!listed.Add($"{job.Line}|{image.Index}|{image.FileName}|{size}|{sha}") && onlyIfNew) return;
        }
        using var request = JsonDocument.Parse(sidecar.ToJson());
        manifest.Append(new ManifestEntry(job.Line, image.Index, image.Seed, image.FileName, size, sha, request.RootElement.Clone(), null));
    }

    private (ShardManifest Manifest, HashSet<string> Listed) ManifestFor(GenerationJob job) =>
        _manifests.GetOrAdd(Path.GetFullPath(_folder(job)), folder =>
        {
            var manifest = new ShardManifest(folder, Shard);
            var listed = manifest.Entries().Where(e => e.Done).Select(e => $"{e.Line}|{e.Index}|{e.File}|{e.Size}|{e.Sha256}").ToHashSet(StringComparer.Ordinal);
            return (manifest, listed);
        });

    private int IndexOf(GenerationJob job)
    {
        for (int j = 0; j < Jobs.Count; j++)
            if (ReferenceEquals(Jobs[j], job) || Jobs[j].Line == job.Line) return j;
        throw new ArgumentException($"job of line {job.Line} is not in the plan.", nameof(job));
    }
}
