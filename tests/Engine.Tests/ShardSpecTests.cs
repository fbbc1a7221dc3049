using Engine.Jobs;
using Engine.Jobs.Sharding;

namespace Engine.Tests;

/// <summary>Shards from <c>--shard</c> and the schedulers' environments, the bad inputs, and the image slots shards split.</summary>
public class ShardSpecTests
{
    private static Func<string, string?> Env(params (string Name, string Value)[] vars) =>
        name => vars.FirstOrDefault(v => v.Name == name).Value;

    [TestCase("0/1", 0, 1)]
    [TestCase("3/4", 3, 4)]
    [TestCase(" 2 / 8 ", 2, 8)]
    public void ParsesKOfN(string text, int k, int n) =>
        Assert.That(ShardSpec.Parse(text, "--shard"), Is.EqualTo(new ShardSpec(k, n)));

    [TestCase("3/2", "shard 3 does not exist; shards are numbered 0 to 1")]
    [TestCase("2/2", "shard 2 does not exist")]
    [TestCase("0/0", "the number of shards must be at least 1")]
    [TestCase("x", "expected K/N with whole numbers")]
    [TestCase("1/x", "expected K/N")]
    [TestCase("-1/4", "expected K/N")]
    [TestCase("1/2/3", "expected K/N")]
    public void BadShardIsNamed(string text, string message) =>
        Assert.That(() => ShardSpec.Parse(text, "--shard"), Throws.TypeOf<FormatException>().With.Message.Contains($"--shard '{text}'").And.Message.Contains(message));

    [Test]
    public void NoOptionNoEnvironmentIsTheWholeRun() =>
        Assert.That(ShardSpec.Resolve(null, null, Env()), Is.EqualTo(ShardSpec.Whole));

    [Test]
    public void SlurmArrayCountsFromItsMinimumInSteps()
    {
        Assert.That(ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "0"))), Is.EqualTo(new ShardSpec(2, 4)));
        Assert.That(ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "1"))), Is.EqualTo(new ShardSpec(3, 4)));
        Assert.That(ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "14"), ("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_STEP", "2"))),
            Is.EqualTo(new ShardSpec(2, 3)));
        Assert.That(() => ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "1"))),
            Throws.TypeOf<FormatException>().With.Message.Contains("SLURM_ARRAY_TASK_ID=7").And.Message.Contains("contiguous --array=0-N-1"), "a sparse array (--array=1,3,7) is refused");
        Assert.That(() => ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "1"))),
            Throws.TypeOf<FormatException>().With.Message.Contains("SLURM_ARRAY_TASK_COUNT is not"));
        Assert.That(() => ShardSpec.Resolve(null, null, Env(("SLURM_ARRAY_TASK_ID", "one"), ("SLURM_ARRAY_TASK_COUNT", "4"))),
            Throws.TypeOf<FormatException>().With.Message.Contains("SLURM_ARRAY_TASK_ID='one'"));
    }

    [Test]
    public void KubernetesIndexNeedsItsCount()
    {
        Assert.That(ShardSpec.Resolve(null, 4, Env(("JOB_COMPLETION_INDEX", "3"))), Is.EqualTo(new ShardSpec(3, 4)));
        Assert.That(ShardSpec.Resolve(null, null, Env(("JOB_COMPLETION_INDEX", "1"), ("ENGINE_SHARD_COUNT", "2"))), Is.EqualTo(new ShardSpec(1, 2)));
        Assert.That(() => ShardSpec.Resolve(null, null, Env(("JOB_COMPLETION_INDEX", "1"))),
            Throws.TypeOf<FormatException>().With.Message.Contains("--shard-count N or ENGINE_SHARD_COUNT"));
        Assert.That(() => ShardSpec.Resolve(null, 2, Env(("JOB_COMPLETION_INDEX", "2"))),
            Throws.TypeOf<FormatException>().With.Message.Contains("shard 2 does not exist"));
        Assert.That(() => ShardSpec.Resolve(null, 3, Env()), Throws.TypeOf<FormatException>().With.Message.Contains("--shard-count").And.Message.Contains("JOB_COMPLETION_INDEX"));
    }

    [Test]
    public void OptionAndEnvironmentMustAgree()
    {
        var slurm = Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "0"));
        Assert.That(ShardSpec.Resolve("1/4", null, slurm), Is.EqualTo(new ShardSpec(1, 4)), "agreeing is fine");
        Assert.That(() => ShardSpec.Resolve("0/4", null, slurm), Throws.TypeOf<FormatException>().With.Message.Contains("--shard 0/4 contradicts the environment: SLURM_ARRAY_TASK_ID=1"));
        Assert.That(() => ShardSpec.Resolve("1/2", null, slurm), Throws.TypeOf<FormatException>().With.Message.Contains("gives shard 1/4"));
        Assert.That(() => ShardSpec.Resolve("1/4", 2, Env()), Throws.TypeOf<FormatException>().With.Message.Contains("--shard 1/4 and --shard-count 2 disagree"));
        var both = Env(("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("JOB_COMPLETION_INDEX", "2"), ("ENGINE_SHARD_COUNT", "4"));
        Assert.That(() => ShardSpec.Resolve(null, null, both), Throws.TypeOf<FormatException>().With.Message.Contains("the environment names two shards"));
    }

    [Test]
    public void EveryImageIsInExactlyOneShardForAnyN()
    {
        var jobs = JobFile.Read(new StringReader(string.Join("\n",
            """{"model":"m","seeds":"0-9","class":1}""",
            """{"model":"m","seeds":"0-4","class":2}""",       // same folder and seeds as line 1: same slots
            """{"model":"m","seed":3,"count":7,"out":"other"}""")), "jobs.jsonl").Jobs;
        var slots = ShardAssignment.Slots(jobs, j => j.Out ?? "out");
        Assert.That(slots[1], Is.EqualTo(slots[0][..5]), "an image that could share a file with another shares its slot");
        Assert.That(slots[2], Is.EqualTo(Enumerable.Range(10, 7)), "another folder takes new slots in file order");
        for (int n = 1; n <= 7; n++)
        {
            var owners = slots.SelectMany(s => s).Select(slot => Enumerable.Range(0, n).Where(k => new ShardSpec(k, n).Owns(slot)).ToList()).ToList();
            Assert.That(owners.All(o => o.Count == 1), $"N = {n}: one shard per image");
            var sizes = Enumerable.Range(0, n).Select(k => slots.SelectMany(s => s).Distinct().Count(new ShardSpec(k, n).Owns)).ToList();
            Assert.That(sizes.Max() - sizes.Min(), Is.LessThanOrEqualTo(1), $"N = {n}: shards differ by at most one slot");
            for (int w = 1; w <= 3; w++)
            {
                var shard = new ShardSpec(n - 1, n);
                var mine = slots.SelectMany(s => s).Distinct().Where(shard.Owns).ToList();
                var perWorker = Enumerable.Range(0, w).Select(x => mine.Count(s => ShardAssignment.Worker(s, shard, w) == x)).ToList();
                Assert.That(perWorker.Sum(), Is.EqualTo(mine.Count));
                Assert.That(perWorker.Max() - perWorker.Min(), Is.LessThanOrEqualTo(1), $"N = {n}, {w} workers");
            }
        }
    }

    [Test]
    public void ManifestEntriesRoundTripAndCutLinesAreReported()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"engine-manifest-{Guid.NewGuid():N}");
        try
        {
            var manifest = new ShardManifest(dir, new ShardSpec(1, 3));
            Assert.That(Path.GetFileName(manifest.Path), Is.EqualTo("shard-1-of-3.jsonl"));
            using var request = System.Text.Json.JsonDocument.Parse("""{"seed": 5, "prompt": "a \"cat\""}""");
            var made = new ManifestEntry(2, 0, 5, "seed000005.png", 123, new string('a', 64), request.RootElement.Clone(), null);
            var failed = new ManifestEntry(2, 1, 6, null, null, null, null, "NaN at step 3");
            manifest.Append(made);
            manifest.Append(failed);
            File.AppendAllText(manifest.Path, """{"line": 2, "ind""");
            var all = ShardManifest.ReadAll(dir).Single();
            Assert.That(all.Entries, Has.Count.EqualTo(2));
            Assert.That(all.Entries[0] with { Request = null }, Is.EqualTo(made with { Request = null }));
            Assert.That(all.Entries[0].Request!.Value.GetProperty("prompt").GetString(), Is.EqualTo("a \"cat\""));
            Assert.That(all.Entries[1], Is.EqualTo(failed));
            Assert.That((all.Entries[0].Done, all.Entries[1].Done), Is.EqualTo((true, false)));
            Assert.That(all.Problems.Single(), Does.Contain("shard-1-of-3.jsonl:3: invalid JSON"));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
