using System.Text.Json.Nodes;
using Engine.Jobs.Sharding;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine batch --shard K/N</c>, device lists and <c>engine batch status</c>: the union of the shards is the unsharded run
/// file for file, workers on several devices change nothing, status verifies what is on disk, re-running redoes what is
/// missing or damaged, and bad shards and a second job file are refused before any work.
/// </summary>
public class ShardedBatchTests
{
    // Two lines in the default folder (one repeating seeds of the other with another class) and one in a folder of its own.
    private static string JobFile(Cli.Scratch scratch) =>
        Write(scratch["jobs.jsonl"],
            """{"model": "fmnist-unet", "seeds": "0-6", "steps": 2}""",
            """{"model": "fmnist-unet", "seeds": "0-2", "class": 9, "steps": 1, "sampler": "ddim"}""",
            $$"""{"model": "fmnist-unet", "seed": 20, "count": 3, "class": 4, "steps": 1, "out": "{{scratch["own"]}}"}""");

    private static string Write(string path, params string[] lines)
    {
        File.WriteAllLines(path, lines);
        return path;
    }

    // Every file of a folder but the shard manifests (their names and lines depend on the split), by name.
    private static SortedDictionary<string, byte[]> Files(string folder) =>
        new(Directory.GetFiles(folder).Where(f => !Path.GetFileName(f).StartsWith("shard-", StringComparison.Ordinal))
            .ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes), StringComparer.Ordinal);

    private static void AssertSameFiles(string expected, string actual, string what)
    {
        var a = Files(expected);
        var b = Files(actual);
        Assert.That(b.Keys, Is.EqualTo(a.Keys), $"{what}: the same files");
        foreach (var name in a.Keys) Assert.That(b[name], Is.EqualTo(a[name]), $"{what}: {name} is byte-identical");
    }

    [Test]
    public void UnionOfShardsIsTheUnshardedRunFileForFile()
    {
        using var scratch = new Cli.Scratch();
        string jobs = JobFile(scratch);
        var whole = Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["whole"]);
        Assert.That(whole.Code, Is.EqualTo(ExitCodes.Success), whole.ToString());
        Assert.That(Directory.GetFiles(scratch["whole"], "*.png"), Has.Length.EqualTo(10), "7 images, and 3 of another class");

        // Three shards write into one folder (the other line's folder is shared too, so run it aside first).
        string ownWhole = scratch["own-whole"];
        Directory.Move(scratch["own"], ownWhole);
        int total = 0;
        for (int k = 0; k < 3; k++)
        {
            var r = Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["union"], "--shard", $"{k}/3");
            Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
            Assert.That(r.Out, Does.Contain($"shard {k}/3 (shard-{k}-of-3.jsonl): "));
            total += ShardManifest.ReadAll(scratch["union"]).Concat(ShardManifest.ReadAll(scratch["own"])).Where(m => m.File.EndsWith($"shard-{k}-of-3.jsonl")).Sum(m => m.Entries.Count);
        }
        Assert.That(total, Is.EqualTo(13), "every image is listed by exactly one shard");
        AssertSameFiles(scratch["whole"], scratch["union"], "default folder");
        AssertSameFiles(ownWhole, scratch["own"], "the line's own folder");

        var status = Cli.Run("batch", "status", scratch["union"]);
        Assert.That(status.Code, Is.EqualTo(ExitCodes.Success), status.ToString());
        Assert.That(status.Out, Does.Contain("line 1: 7 of 7 done, 0 failed, 0 missing").And.Contain("line 2: 3 of 3 done"));
        Assert.That(status.Out, Does.Contain("batch status: 10 of 10 images done, 0 failed, 0 missing; complete"));
        Assert.That(status.Out, Does.Contain("3 manifests: shard-0-of-3.jsonl, shard-1-of-3.jsonl, shard-2-of-3.jsonl"));
        Assert.That(Cli.Run("batch", "status", scratch["own"]).Out, Does.Contain("3 of 3 images done"));

        // The manifest line carries the file, its size and checksum and the full request (the sidecar).
        var entry = ShardManifest.ReadAll(scratch["union"]).SelectMany(m => m.Entries).Single(e => e.Line == 2 && e.Index == 1);
        var png = Path.Combine(scratch["union"], "seed000001_class9.png");
        Assert.That((entry.File, entry.Size), Is.EqualTo(("seed000001_class9.png", (long?)new FileInfo(png).Length)));
        Assert.That(entry.Request!.Value.GetProperty("sampler").GetString(), Is.EqualTo("ddim"));
        Assert.That(entry.Request!.Value.GetProperty("png_sha256").GetString(), Is.EqualTo(entry.Sha256));
    }

    [Test]
    public void WorkersOnSeveralDevicesMakeTheSameFiles()
    {
        using var scratch = new Cli.Scratch();
        string jobs = Write(scratch["jobs.jsonl"], """{"model": "fmnist-unet", "seeds": "0-4", "steps": 2}""", """{"model": "fmnist-unet", "seed": 7, "count": 2, "class": 1, "steps": 1}""");
        Assert.That(Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["one"]).Code, Is.EqualTo(ExitCodes.Success));
        var two = Cli.Run("batch", jobs, "--device", "cpu,cpu", "--out", scratch["two"]);
        Assert.That(two.Code, Is.EqualTo(ExitCodes.Success), two.ToString());
        Assert.That(two.Out, Does.Contain("2 workers on cpu, cpu").And.Contain("batch [cpu]: ").And.Contain("7 images written"));
        AssertSameFiles(scratch["one"], scratch["two"], "two CPU workers");
        // A shard of a sharded run split over three workers, then the rest: still the same files.
        Assert.That(Cli.Run("batch", jobs, "--device", "cpu,cpu,cpu", "--out", scratch["mixed"], "--shard", "0/2").Code, Is.EqualTo(ExitCodes.Success));
        Assert.That(Cli.Run("batch", jobs, "--device", "cpu,cpu", "--out", scratch["mixed"], "--shard", "1/2").Code, Is.EqualTo(ExitCodes.Success));
        AssertSameFiles(scratch["one"], scratch["mixed"], "shards with workers");
        Assert.That(Cli.Run("batch", "status", scratch["mixed"]).Out, Does.Contain("7 of 7 images done"));

        var clash = Write(scratch["clash.jsonl"], """{"model": "fmnist-unet", "seed": 1, "steps": 1, "device": "ilgpu-cpu"}""");
        var r = Cli.Run("batch", clash, "--device", "cpu,cpu", "--out", scratch["clash"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain("clash.jsonl:1: job failed: field 'device' is 'ilgpu-cpu' but --device lists cpu"));
    }

    [Test]
    public void StatusFindsMissingDamagedAndFailedImagesAndARerunRedoesThem()
    {
        using var scratch = new Cli.Scratch();
        string jobs = Write(scratch["jobs.jsonl"], """{"model": "fmnist-unet", "seeds": "0-5", "class": 2, "steps": 1}""", """{"model": "fmnist-unet", "seed": 9, "sampler": "no_such_sampler"}""");
        for (int k = 0; k < 2; k++) Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["o"], "--shard", $"{k}/2");
        string Png(int seed) => Path.Combine(scratch["o"], $"seed{seed:D6}_class2.png");
        var original = File.ReadAllBytes(Png(3));
        File.Delete(Png(0));
        var cut = File.ReadAllBytes(Png(3));
        File.WriteAllBytes(Png(3), cut[..(cut.Length / 2)]);
        var status = Cli.Run("batch", "status", scratch["o"]);
        Assert.That(status.Code, Is.EqualTo(ExitCodes.Failure), status.ToString());
        Assert.That(status.Out, Does.Contain("line 1: 4 of 6 done, 0 failed, 2 missing"));
        Assert.That(status.Out, Does.Contain("missing: image 0: seed000000_class2.png is damaged (the file is missing)"));
        Assert.That(status.Out, Does.Contain("missing: image 3: seed000003_class2.png is damaged (").And.Contain("where the manifest records"));
        Assert.That(status.Out, Does.Contain("line 2: 0 of 1 done, 1 failed, 0 missing").And.Contain("failed: image 0 (seed 9): ").And.Contain("no_such_sampler"));
        Assert.That(status.Out, Does.Contain("batch status: 4 of 7 images done, 1 failed, 2 missing"));

        // Shard 1 holds seeds 1, 3 and 5 (the failing line is slot 6, shard 0): its re-run makes seed 3 again and nothing else.
        var again = Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["o"], "--shard", "1/2");
        Assert.That(again.Out, Does.Contain("1 image written, 2 skipped"), again.ToString());
        Assert.That(again.Err, Does.Contain("seed000003_class2.png is damaged"));
        Assert.That(File.ReadAllBytes(Png(3)), Is.EqualTo(original));
        Assert.That(File.Exists(Png(0)), Is.False, "shard 1 does not touch shard 0's images");
        Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["o"], "--shard", "0/2");
        Assert.That(Cli.Run("batch", "status", scratch["o"]).Out, Does.Contain("batch status: 6 of 7 images done, 1 failed, 0 missing"));
    }

    [Test]
    public void AnotherJobFileInTheSameFolderIsRefusedBeforeWork()
    {
        using var scratch = new Cli.Scratch();
        string first = Write(scratch["a.jsonl"], """{"model": "fmnist-unet", "seed": 1, "steps": 1}""");
        string second = Write(scratch["b.jsonl"], """{"model": "fmnist-unet", "seed": 2, "steps": 1}""");
        Assert.That(Cli.Run("batch", first, "--device", "cpu", "--out", scratch["o"]).Code, Is.EqualTo(ExitCodes.Success));
        var r = Cli.Run("batch", second, "--device", "cpu", "--out", scratch["o"], "--shard", "0/2");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(r.Err, Does.Contain($"--out {scratch["o"]} already holds the images of another job file ({first}").And.Contain($"this run: {second}"));
        Assert.That(Directory.GetFiles(scratch["o"], "*.png").Select(Path.GetFileName), Is.EqualTo(new[] { "seed000001_class0.png" }), "nothing was made");
        Assert.That(Directory.GetFiles(scratch["o"], "shard-*"), Has.Length.EqualTo(1), "no manifest of the refused run");
    }

    [Test]
    public void ABadLineIsListedInEveryFolderTheFileWritesAndClaimsNoOther()
    {
        using var scratch = new Cli.Scratch();
        string jobs = Write(scratch["jobs.jsonl"], $$"""{"model": "fmnist-unet", "seed": 1, "steps": 1, "out": "{{scratch["o"]}}"}""", """{"model": "fmnist-unet", "steps": 0}""");
        var r = Cli.Run("batch", jobs, "--device", "cpu", "--out", scratch["default"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(Directory.Exists(scratch["default"]), Is.False, "no line writes to the default folder, so it is not claimed");
        var status = Cli.Run("batch", "status", scratch["o"]);
        Assert.That(status.Code, Is.EqualTo(ExitCodes.Failure), "a bad line keeps the run incomplete");
        Assert.That(status.Out, Does.Contain("line 2: failed, the line does not read: field 'steps' must be a positive integer"));
        Assert.That(status.Out, Does.Contain("batch status: 1 of 1 images done, 0 failed, 0 missing, 1 bad line"));
    }

    [TestCase("--shard", "3/2", "shard 3 does not exist; shards are numbered 0 to 1")]
    [TestCase("--shard", "0/0", "the number of shards must be at least 1")]
    [TestCase("--shard", "two/4", "expected K/N with whole numbers")]
    [TestCase("--shard-count", "0", "expected a whole number >= 1")]
    [TestCase("--device", "cuda:x", "unknown device 'cuda:x'")]
    [TestCase("--device", "cpu,", "an empty entry in the device list")]
    public void BadScaleOutOptionsAreUsageErrorsBeforeWork(string option, string value, string message)
    {
        using var scratch = new Cli.Scratch();
        string jobs = Write(scratch["jobs.jsonl"], """{"model": "fmnist-unet", "seed": 1, "steps": 1}""");
        var r = Cli.Run("batch", jobs, option, value, "--out", scratch["o"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain(option).And.Contain(message));
        Assert.That(Directory.Exists(scratch["o"]), Is.False, "nothing was written");
    }

    [Test]
    public void StatusOfAFolderWithoutARunIsNamed()
    {
        using var scratch = new Cli.Scratch();
        Directory.CreateDirectory(scratch["o"]);
        var r = Cli.Run("batch", "status", scratch["o"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain($"{scratch["o"]}: no batch-jobs.jsonl"));
        Assert.That(Cli.Run("batch", "status").Code, Is.EqualTo(ExitCodes.Usage));
        var extra = Cli.Run("batch", scratch["o"], "more");
        Assert.That(extra.Code, Is.EqualTo(ExitCodes.Usage));
        Assert.That(extra.Err, Does.Contain("unexpected argument 'more'"));
    }
}
