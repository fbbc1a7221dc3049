namespace Engine.Jobs.Sharding;

/// <summary>
/// Numbers the images of a job file into slots that shards and workers split. Images are taken in file order
/// (job line, then image index); each distinct (output folder, seed) pair gets the next slot, and an image whose
/// pair was seen before shares that slot. An image's file name depends only on its seed and class, so two
/// images that could land on one file always share a slot and are made by one shard and one worker: no file is
/// ever written by two processes. The numbering depends only on the job file, so every shard computes the same.
/// </summary>
public static class ShardAssignment
{
    /// <summary>
    /// The slot of every image: <c>result[j][i]</c> for image <c>i</c> of <c>jobs[j]</c>; <paramref name="folder"/>
    /// gives a job's output folder (compared after <see cref="Path.GetFullPath(string)"/>).
    /// </summary>
    public static int[][] Slots(IReadOnlyList<GenerationJob> jobs, Func<GenerationJob, string> folder)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        ArgumentNullException.ThrowIfNull(folder);
        var slots = new Dictionary<(string Folder, ulong Seed), int>();
        var result = new int[jobs.Count][];
        for (int j = 0; j < jobs.Count; j++)
        {
            string dir = Path.GetFullPath(folder(jobs[j]));
            var seeds = jobs[j].Seeds;
            result[j] = new int[seeds.Count];
            for (int i = 0; i < seeds.Count; i++)
            {
                if (!slots.TryGetValue((dir, seeds[i]), out int slot)) slots[(dir, seeds[i])] = slot = slots.Count;
                result[j][i] = slot;
            }
        }
        return result;
    }

    /// <summary>
    /// The worker (0 to <paramref name="workers"/> - 1) of an image in <paramref name="slot"/> within
    /// <paramref name="shard"/>: the shard's slots are dealt to its workers in turn.
    /// </summary>
    public static int Worker(int slot, ShardSpec shard, int workers)
    {
        ArgumentNullException.ThrowIfNull(shard);
        ArgumentOutOfRangeException.ThrowIfLessThan(workers, 1);
        return slot / shard.Count % workers;
    }
}
