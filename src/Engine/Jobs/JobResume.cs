namespace Engine.Jobs;

/// <summary>
/// Which images of a job are already on disk, so an interrupted run can continue where it stopped.
/// Image files are written atomically (temporary file + rename), so an existing, non-empty file is a
/// complete image; temporary leftovers have other names and do not count.
/// </summary>
public static class JobResume
{
    /// <summary>Splits the job's images into those whose file exists in <paramref name="folder"/> and those still to make.</summary>
    public static (IReadOnlyList<JobImage> Done, IReadOnlyList<JobImage> Pending) Check(GenerationJob job, string folder)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var done = new List<JobImage>();
        var pending = new List<JobImage>();
        foreach (var image in job.Images())
        {
            var file = new FileInfo(Path.Combine(folder, image.FileName));
            (file.Exists && file.Length > 0 ? done : pending).Add(image);
        }
        return (done, pending);
    }
}
