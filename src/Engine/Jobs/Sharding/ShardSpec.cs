using System.Globalization;

namespace Engine.Jobs.Sharding;

/// <summary>
/// Shard <see cref="Index"/> of <see cref="Count"/> of a batch run (0-based: shards 0 to N-1). A shard makes the
/// images whose slot (<see cref="ShardAssignment"/>) is <see cref="Index"/> modulo <see cref="Count"/>, so any N
/// shards cover every image of a job file exactly once.
/// </summary>
/// <param name="Index">This shard, 0 to <paramref name="Count"/> - 1.</param>
/// <param name="Count">Number of shards, at least 1.</param>
public sealed record ShardSpec(int Index, int Count)
{
    /// <summary>Environment variables read by <see cref="Resolve"/>.</summary>
    public const string SlurmTaskId = "SLURM_ARRAY_TASK_ID", SlurmTaskCount = "SLURM_ARRAY_TASK_COUNT", SlurmTaskMin = "SLURM_ARRAY_TASK_MIN",
        SlurmTaskStep = "SLURM_ARRAY_TASK_STEP", KubernetesIndex = "JOB_COMPLETION_INDEX", CountVariable = "ENGINE_SHARD_COUNT";

    /// <summary>The whole run as one shard (0/1).</summary>
    public static ShardSpec Whole { get; } = new(0, 1);

    /// <summary>The file name of this shard's manifest: <c>shard-K-of-N.jsonl</c>.</summary>
    public string ManifestName => $"shard-{Index}-of-{Count}.jsonl";

    /// <summary>Whether this shard makes the image in <paramref name="slot"/>.</summary>
    public bool Owns(int slot) => slot % Count == Index;

    /// <inheritdoc />
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>
    /// Parses <c>K/N</c> (whole numbers, 0 &lt;= K &lt; N); <paramref name="source"/> names the option or variable in the
    /// <see cref="FormatException"/> for anything else.
    /// </summary>
    public static ShardSpec Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var parts = text.Trim().Split('/');
        if (parts.Length != 2 || !TryCount(parts[0], out int k) || !TryCount(parts[1], out int n))
            throw new FormatException($"{source} '{text}': expected K/N with whole numbers, shards numbered 0 to N-1 (e.g. 0/4).");
        return Checked(k, n, $"{source} '{text}'");
    }

    /// <summary>
    /// The shard of this process: <paramref name="option"/> (<c>--shard K/N</c>) when given, else the scheduler's
    /// environment: Slurm's <c>SLURM_ARRAY_TASK_ID</c> with <c>SLURM_ARRAY_TASK_COUNT</c> (K counted from
    /// <c>SLURM_ARRAY_TASK_MIN</c> in steps of <c>SLURM_ARRAY_TASK_STEP</c>), or Kubernetes' <c>JOB_COMPLETION_INDEX</c>
    /// with the completion count from <paramref name="countOption"/> or <c>ENGINE_SHARD_COUNT</c>; else
    /// <see cref="Whole"/>. An option and an environment that disagree, or two environments that do, are an error
    /// (<see cref="FormatException"/>) naming both.
    /// </summary>
    public static ShardSpec Resolve(string? option, int? countOption, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        if (countOption is < 1) throw new FormatException($"--shard-count {countOption}: must be at least 1.");
        var given = option is null ? null : Parse(option, "--shard");
        if (given is not null && countOption is { } c && c != given.Count)
            throw new FormatException($"--shard {option} and --shard-count {c} disagree on the number of shards.");
        var slurm = FromSlurm(environment);
        var kube = FromKubernetes(environment, countOption, required: given is null && slurm is null);
        if (slurm is not null && kube is not null && slurm.Value.Shard != kube.Value.Shard)
            throw new FormatException($"the environment names two shards: {slurm.Value.Source} gives {slurm.Value.Shard}, {kube.Value.Source} gives {kube.Value.Shard}.");
        var fromEnv = slurm ?? kube;
        if (given is not null && fromEnv is { } env && env.Shard != given)
            throw new FormatException($"--shard {option} contradicts the environment: {env.Source} gives shard {env.Shard}.");
        if (given is null && fromEnv is null && countOption is not null)
            throw new FormatException($"--shard-count is the number of shards of a Kubernetes Indexed Job and needs {KubernetesIndex}; give --shard K/N otherwise.");
        return given ?? fromEnv?.Shard ?? Whole;
    }

    private static (ShardSpec Shard, string Source)? FromSlurm(Func<string, string?> env)
    {
        string? id = env(SlurmTaskId);
        if (id is null) return null;
        string source = $"{SlurmTaskId}={id}";
        int taskId = Variable(env, SlurmTaskId)!.Value;
        int count = Variable(env, SlurmTaskCount) ?? throw new FormatException($"{source} is set but {SlurmTaskCount} is not (a Slurm array task without its count).");
        int min = Variable(env, SlurmTaskMin) ?? 0;
        int step = Variable(env, SlurmTaskStep) ?? 1;
        if (step < 1) throw new FormatException($"{SlurmTaskStep}={step}: must be at least 1.");
        source += $" ({SlurmTaskMin}={min}, {SlurmTaskCount}={count}{(step == 1 ? "" : $", {SlurmTaskStep}={step}")})";
        if (taskId < min || (taskId - min) % step != 0)
            throw new FormatException($"{source}: the task is not on the array's range from {SlurmTaskMin} in steps of {(step == 1 ? "1" : SlurmTaskStep)}; submit with --array=0-{count - 1}.");
        return (Checked((taskId - min) / step, count, source + " (submit with a contiguous --array=0-N-1)"), source);
    }

    private static (ShardSpec Shard, string Source)? FromKubernetes(Func<string, string?> env, int? countOption, bool required)
    {
        if (env(KubernetesIndex) is not { } raw) return null;
        int index = Variable(env, KubernetesIndex)!.Value;
        int? count = countOption ?? Variable(env, CountVariable);
        if (count is null)
        {
            // Without its count the index cannot say which shard this is; only an error when nothing else does.
            if (required) throw new FormatException($"{KubernetesIndex}={raw} is set but the number of shards is not: give --shard-count N or {CountVariable} (the Job's completions).");
            return null;
        }
        string source = $"{KubernetesIndex}={raw} ({(countOption is null ? $"{CountVariable}={count}" : $"--shard-count {count}")})";
        return (Checked(index, count.Value, source), source);
    }

    private static int? Variable(Func<string, string?> env, string name)
    {
        if (env(name) is not { } text) return null;
        if (!TryCount(text, out int value)) throw new FormatException($"{name}='{text}': expected a whole number >= 0.");
        return value;
    }

    private static bool TryCount(string text, out int value) =>
        int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out value);

    private static ShardSpec Checked(int k, int n, string source)
    {
        if (n < 1) throw new FormatException($"{source}: the number of shards must be at least 1.");
        if (k >= n) throw new FormatException($"{source}: shard {k} does not exist; shards are numbered 0 to {n - 1}.");
        return new ShardSpec(k, n);
    }
}
