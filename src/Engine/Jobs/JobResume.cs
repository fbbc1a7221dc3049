namespace Engine.Jobs;

/// <summary>
/// Which images of a job are already on disk, so an interrupted run can continue where it stopped.
/// Image files are written atomically (temporary file + rename), so an existing, non-empty file was once
/// complete; temporary leftovers have other names and do not count. A file damaged afterwards (truncated,
/// overwritten, its sidecar deleted) is caught by the check handed to <see cref="Check(GenerationJob, string, Func{string, string?})"/>.
/// </summary>
public static class JobResume
{
    /// <summary>Splits the job's images into those whose file exists in <paramref name="folder"/> and those still to make.</summary>
    public static (IReadOnlyList<JobImage> Done, IReadOnlyList<JobImage> Pending) Check(GenerationJob job, string folder)
    {
        var (done, pending, _) = Check(job, folder, _ => null);
        return (done, pending);
    }

    /// <summary>
    /// Splits the job's images into those done and those to make: an existing, non-empty file counts as done
    /// only when <paramref name="problem"/> (given its path) returns null; otherwise it is to be made again and
    /// listed in <c>Damaged</c> with the reason.
    /// </summary>
    public static (IReadOnlyList<JobImage> Done, IReadOnlyList<JobImage> Pending, IReadOnlyList<(JobImage Image, string Reason)> Damaged) Check(
        GenerationJob job, string folder, Func<string, string?> problem) => Check(job, folder, problem, _ => true);

    /// <summary>
    /// As <see cref="Check(GenerationJob, string, Func{string, string?})"/> for the images <paramref name="include"/> accepts
    /// (a shard's or a worker's share); the others are neither read nor listed.
    /// </summary>
    public static (IReadOnlyList<JobImage> Done, IReadOnlyList<JobImage> Pending, IReadOnlyList<(JobImage Image, string Reason)> Damaged) Check(
        GenerationJob job, string folder, Func<string, string?> problem, Func<JobImage, bool> include)
    {
        ArgumentNullException.ThrowIfNull(include);
        ArgumentNullException.ThrowIfNull(job);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(problem);
        var done = new List<JobImage>();
        var pending = new List<JobImage>();
        var damaged = new List<(JobImage, string)>();
        foreach (var image in job.Images().Where(include))
        {
            var file = new FileInfo(Path.Combine(folder, image.FileName));
            if (!file.Exists || file.Length == 0)
            {
                pending.Add(image);
                continue;
            }
            if (problem(file.FullName) is { } reason)
            {
                damaged.Add((image, reason));
                pending.Add(image);
                continue;
            }
            done.Add(image);
        }
        return (done, pending, damaged);
    }
}
