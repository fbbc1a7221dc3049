using System.CommandLine;
using Engine.Gpu;
using Engine.Jobs.Sharding;

namespace Engine.Cli.Sharding;

/// <summary>
/// The scale-out options of <c>engine batch</c>: <c>--shard K/N</c> (or the scheduler's environment),
/// <c>--shard-count N</c> for Kubernetes' completion index, a <c>--device</c> list (one worker per device) and the
/// <c>status</c> form. Values are checked here, before any job runs.
/// </summary>
public static class BatchOptions
{
    /// <summary>The help paragraph of these options.</summary>
    public const string Details = """
        Scale-out. --shard K/N makes only shard K (0 to N-1) of N: images are numbered in file order (job line, image),
        each distinct (output folder, seed) taking the next number, and shard K makes the numbers equal to K modulo N,
        so any N shards make every image exactly once and their union is, file for file, what one unsharded run
        writes. Without --shard the shard comes from the scheduler: Slurm job arrays (SLURM_ARRAY_TASK_ID minus
        SLURM_ARRAY_TASK_MIN, of SLURM_ARRAY_TASK_COUNT) or Kubernetes Indexed Jobs (JOB_COMPLETION_INDEX, of
        --shard-count or ENGINE_SHARD_COUNT). Each shard appends one line per image (file, size, SHA-256, the full
        request; or the error) to OUT/shard-K-of-N.jsonl, and every run records the job file in OUT/batch-jobs.jsonl:
        a run of another job file into the same folder is refused before any work. Re-running a shard redoes its
        missing and damaged images.
        --device cuda:0,cuda:1 (or cuda:all; cpu,cpu for two CPU workers) runs one worker per device over the
        shard's images, dealt in turn; each image is the same request on any worker, so the files are the same.
        'engine batch status OUT' merges the manifests in OUT, verifies every listed PNG (size, SHA-256, sidecar,
        a full decode) and reports done / failed / missing per job line; exit code 0 only when all are done.
        """;

    /// <summary><c>--device</c> of batch: one device kind, or a list of devices (one worker each).</summary>
    public static Option<string?> Devices()
    {
        var option = CliOptions.Parsed<string?>("--device", "KIND[,KIND...]",
            "device of jobs without 'device': cpu, cuda, opencl, ilgpu-cpu or cuda:N (default: ENGINE_DEVICE, else the best available); " +
            "a list (cuda:0,cuda:1 or cuda:all) runs one worker per device", text =>
            {
                string k = text.Trim().ToLowerInvariant();
                if (k == "auto") return null;
                try { return string.Join(",", DeviceList.Parse(k)); }
                catch (FormatException e) { throw new FormatException($"--device {e.Message}", e); }
            });
        option.CompletionSources.Add([.. DeviceFactory.Kinds, "cuda:all", "auto"]);
        return option;
    }

    /// <summary><c>--shard K/N</c>, checked as it is parsed.</summary>
    public static Option<string?> Shard() => CliOptions.Parsed<string?>("--shard", "K/N",
        "make only shard K (0 to N-1) of N of the job file's images (default: from SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX, else all)",
        text => ShardSpec.Parse(text, "--shard").ToString());

    /// <summary><c>--shard-count N</c>: the number of shards when the shard index comes from <c>JOB_COMPLETION_INDEX</c>.</summary>
    public static Option<int?> ShardCount() => CliOptions.Parsed<int?>("--shard-count", "N",
        "number of shards of a Kubernetes Indexed Job (its completions), with JOB_COMPLETION_INDEX (default: ENGINE_SHARD_COUNT)",
        text => int.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int n) && n >= 1
            ? n : throw new FormatException($"--shard-count '{text}': expected a whole number >= 1."));

    /// <summary>The output folder when the command line is <c>batch status OUT</c>, else null (a second word after a job file is a usage error).</summary>
    public static string? IsStatus(string first, string? second, string command)
    {
        if (first == "status" && !File.Exists(first))
            return second ?? throw new UsageException($"{command}: 'status' needs the output folder: engine {command} status OUT.");
        if (second is not null) throw new UsageException($"{command}: unexpected argument '{second}' after the job file (the status form is 'engine {command} status OUT').");
        return null;
    }

    /// <summary>
    /// This process's shard (option, then environment) and the devices of its workers (empty: the default device).
    /// A contradiction is a <see cref="UsageException"/> naming both sides, raised before any work.
    /// </summary>
    public static (ShardSpec Shard, IReadOnlyList<string> Devices) Read(string? shard, int? shardCount, string? devices, string command)
    {
        ShardSpec spec;
        try { spec = ShardSpec.Resolve(shard, shardCount, Environment.GetEnvironmentVariable); }
        catch (FormatException e) { throw new UsageException($"{command}: {e.Message}"); }
        return (spec, devices is null ? [] : devices.Split(','));
    }
}
