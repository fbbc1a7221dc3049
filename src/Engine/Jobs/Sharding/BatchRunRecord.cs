using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Engine.Jobs.Sharding;

/// <summary>
/// What a batch run writes into an output folder before any image, <c>batch-jobs.jsonl</c>: the job file (path and
/// SHA-256 of its bytes) and the job lines whose images go to that folder, with their image counts, and the bad
/// lines. Every shard of a run writes the same record, so the first one creates it and the others find it equal;
/// a run of another job file finds it different and is refused before any work, so one folder never mixes two
/// job files. <c>engine batch status</c> reads it to know which images to expect.
/// </summary>
/// <param name="JobFile">Full path of the job file, for the messages.</param>
/// <param name="JobSha256">SHA-256 of the job file's bytes as lowercase hex.</param>
/// <param name="Lines">The job lines of this folder in file order: image count, or the error of a bad line.</param>
public sealed record BatchRunRecord(string JobFile, string JobSha256, IReadOnlyList<RecordedLine> Lines)
{
    /// <summary>The record's file name.</summary>
    public const string FileName = "batch-jobs.jsonl";

    /// <summary>SHA-256 of a file's bytes as lowercase hex.</summary>
    public static string Sha256Of(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    /// <summary>
    /// Writes the record into <paramref name="folder"/>, or checks that the one there is equal. Throws
    /// <see cref="InvalidOperationException"/> naming the folder and both job files when the folder belongs to another run.
    /// </summary>
    public void Claim(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
        {
            Directory.CreateDirectory(folder);
            string temp = Path.Combine(folder, $".{FileName}.{Environment.ProcessId}.{Guid.NewGuid():N}.partial");
            File.WriteAllText(temp, ToText());
            // Shards start together: a move that refuses to replace lets exactly one create the record.
            try { File.Move(temp, path, overwrite: false); return; }
            catch (IOException) when (File.Exists(path)) { File.Delete(temp); }
        }
        var existing = Read(folder) ?? throw new InvalidOperationException($"{path}: the record vanished while it was read.");
        if (existing.JobSha256 != JobSha256)
            throw new InvalidOperationException($"--out {folder} already holds the images of another job file ({existing.JobFile}, SHA-256 {existing.JobSha256[..12]}...; " +
                $"this run: {JobFile}, SHA-256 {JobSha256[..12]}...): two job files never share an output folder. Give another --out, or delete {path} to start the folder over.");
        if (!existing.Lines.SequenceEqual(Lines))
            throw new InvalidOperationException($"--out {folder} holds the lines {Describe(existing.Lines)} of {existing.JobFile}, but this run would write its lines {Describe(Lines)} there " +
                $"(another --out for the lines without 'out'?). Give the --out of the first run, or delete {path} to start the folder over.");
    }

    /// <summary>The record in <paramref name="folder"/>, or null when there is none; throws <see cref="InvalidDataException"/> naming the file when it does not read.</summary>
    public static BatchRunRecord? Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) return null;
        try
        {
            var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToList();
            if (lines.Count == 0) throw new FormatException("empty");
            using var head = JsonDocument.Parse(lines[0]);
            string job = head.RootElement.GetProperty("job_file").GetString()!;
            string sha = head.RootElement.GetProperty("job_sha256").GetString()!;
            var recorded = new List<RecordedLine>();
            foreach (string text in lines.Skip(1))
            {
                using var doc = JsonDocument.Parse(text);
                var r = doc.RootElement;
                recorded.Add(new RecordedLine(r.GetProperty("line").GetInt32(),
                    r.TryGetProperty("images", out var n) ? n.GetInt32() : 0,
                    r.TryGetProperty("error", out var e) ? e.GetString() : null));
            }
            return new BatchRunRecord(job, sha, recorded);
        }
        catch (Exception e) when (e is JsonException or FormatException or KeyNotFoundException or InvalidOperationException)
        {
            throw new InvalidDataException($"{path}: not a batch run record ({e.Message}).", e);
        }
    }

    private string ToText()
    {
        var text = new StringBuilder();
        text.Append(JsonSerializer.Serialize(new Dictionary<string, string> { ["job_file"] = JobFile, ["job_sha256"] = JobSha256 })).Append('\n');
        foreach (var line in Lines)
        {
            text.Append(line.Error is null
                ? JsonSerializer.Serialize(new Dictionary<string, int> { ["line"] = line.Line, ["images"] = line.Images })
                : JsonSerializer.Serialize(new Dictionary<string, object> { ["line"] = line.Line, ["error"] = line.Error }));
            text.Append('\n');
        }
        return text.ToString();
    }

    private static string Describe(IReadOnlyList<RecordedLine> lines) =>
        lines.Count == 0 ? "(none)" : string.Join(", ", lines.Select(l => l.Line));
}

/// <summary>A job line as a <see cref="BatchRunRecord"/> lists it.</summary>
/// <param name="Line">1-based line of the job file.</param>
/// <param name="Images">Images the line makes (0 for a bad line).</param>
/// <param name="Error">Why the line could not be read, or null.</param>
public sealed record RecordedLine(int Line, int Images, string? Error);
