namespace Engine.Cli.Tests;

/// <summary><c>engine batch</c>: good jobs run, a bad line is reported with its number while the rest run, re-runs resume.</summary>
public class BatchTests
{
    [Test]
    public void RunsGoodJobsReportsBadLinesAndResumes()
    {
        using var scratch = new Cli.Scratch();
        string jobs = scratch["jobs.jsonl"];
        File.WriteAllLines(jobs,
        [
            "# two jobs and two broken lines",
            $$"""{"model": "fmnist-unet", "seeds": "0-1", "class": 3, "steps": 2, "sampler": "ddim", "out": "{{scratch["a"]}}"}""",
            """{"model": "fmnist-unet", "steps": "many"}""",
            "",
            $$"""{"model": "fmnist-unet", "seed": 4, "count": 2, "steps": 2, "options": {"cfg_rescale": 0.7}, "out": "{{scratch["b"]}}"}""",
            $$"""{"model": "fmnist-unet", "seed": 1, "sampler": "no_such_sampler", "out": "{{scratch["c"]}}"}""",
        ]);
        var first = Cli.Run("batch", jobs, "--device", "cpu");
        Assert.That(first.Code, Is.EqualTo(ExitCodes.Failure), first.ToString());
        Assert.That(first.Err, Does.Contain("jobs.jsonl:3:").And.Contain("steps"), "the bad line is reported with its line number");
        Assert.That(first.Err, Does.Contain("jobs.jsonl:6:").And.Contain("no_such_sampler"), "the failing job is reported with its line number");
        Assert.That(Directory.GetFiles(scratch["a"], "*.png").Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "seed000000_class3.png", "seed000001_class3.png" }));
        Assert.That(Directory.GetFiles(scratch["b"], "*.png").Select(Path.GetFileName).Order(), Is.EqualTo(new[] { "seed000004_class0.png", "seed000005_class1.png" }),
            "without classes the model's classes are cycled");
        Assert.That(Directory.GetFiles(scratch["b"], "*.json"), Has.Length.EqualTo(2), "a sidecar per image");
        Assert.That(first.Out, Does.Contain("4 jobs (2 ok, 2 failed), 4 images written, 0 skipped"));

        // Resume: remove one image; the re-run makes only that one.
        var removed = Path.Combine(scratch["a"], "seed000001_class3.png");
        var before = File.ReadAllBytes(removed);
        File.Delete(removed);
        var stamp = File.GetLastWriteTimeUtc(Path.Combine(scratch["b"], "seed000004_class0.png"));
        var second = Cli.Run("batch", jobs, "--device", "cpu");
        Assert.That(second.Code, Is.EqualTo(ExitCodes.Failure), second.ToString());
        Assert.That(second.Out, Does.Contain("1 image written, 3 skipped"));
        Assert.That(File.ReadAllBytes(removed), Is.EqualTo(before), "the regenerated image is the same");
        Assert.That(File.GetLastWriteTimeUtc(Path.Combine(scratch["b"], "seed000004_class0.png")), Is.EqualTo(stamp), "existing images are not rewritten");
    }

    [Test]
    public void BatchImageEqualsGenerateWithThatSeed()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["jobs.jsonl"], $$"""{"model": "fmnist-unet", "seed": 21, "class": 5, "steps": 2, "out": "{{scratch["a"]}}"}""" + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Contain("1 job (1 ok, 0 failed), 1 image written"));
        Assert.That(Cli.Run("generate", "--seeds", "21", "--class", "5", "--steps", "2", "--out", scratch["b"], "--device", "cpu").Code, Is.EqualTo(0));
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["a"], "seed000021_class5.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000021_class5.png"))));
    }

    [Test]
    public void MissingJobFileIsAFailure()
    {
        var r = Cli.Run("batch", "/nonexistent/jobs.jsonl");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(r.Err, Does.Contain("/nonexistent/jobs.jsonl"));
        Assert.That(Cli.Run("batch").Code, Is.EqualTo(ExitCodes.Usage));
    }
}
