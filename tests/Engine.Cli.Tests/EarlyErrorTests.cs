namespace Engine.Cli.Tests;

/// <summary>
/// Mistakes on the command line or in the files it names fail before any model is loaded or any step
/// is run, with a message naming the option or field and what it accepts.
/// </summary>
[TestFixture]
public sealed class EarlyErrorTests
{
    private static void FailsBeforeWork(Cli.Result r, int code, params string[] message)
    {
        Assert.That(r.Code, Is.EqualTo(code), r.ToString);
        foreach (var m in message) Assert.That(r.Err, Does.Contain(m), r.ToString);
        Assert.That(r.Out + r.Err, Does.Not.Contain("step").And.Not.Contain("wrote"), "no sampling may start");
    }

    [Test]
    public void EmptyModelIsNotTheDefaultModel() =>
        FailsBeforeWork(Cli.Run("generate", "--model", "", "--steps", "1", "--count", "1", "--out", Path.GetTempPath()), 2,
            "--model is empty; give a model folder or a built-in model name, or leave --model out for fmnist-unet");

    [Test]
    public void EmptyTeacherIsNamed()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--teacher", " ", "--steps", "1", "--count", "1", "--out", scratch["o"]), 2, "--teacher is empty");
    }

    [Test]
    public void OutBelowAFileFailsBeforeSampling()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["file"], "x");
        var r = Cli.Run("generate", "--steps", "1", "--count", "1", "--out", Path.Combine(scratch["file"], "sub"));
        FailsBeforeWork(r, 1, "--out", $"'{scratch["file"]}' is a file");
        Assert.That(Directory.GetFileSystemEntries(scratch.Path), Has.Length.EqualTo(1));
    }

    [Test]
    public void SchedulerConfigFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--scheduler-config", scratch.Path, "--steps", "1", "--count", "1", "--out", scratch["o"]), 1,
            "--scheduler-config is a folder; expected a scheduler config file");
    }

    [Test]
    public void JobFileFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("batch", scratch.Path), 1, "job file is a folder; expected a file");
    }

    [Test]
    public void InitNoiseFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--init-noise", scratch.Path, "--steps", "1", "--out", scratch["o"]), 1, "is a folder; expected a safetensors file");
    }

    [Test]
    public void SidecarFolderIsNamedAsAFolder()
    {
        using var scratch = new Cli.Scratch();
        FailsBeforeWork(Cli.Run("generate", "--from-sidecar", scratch.Path, "--out", scratch["o"]), 1, "is a folder; expected an image sidecar");
    }

    [Test]
    public void SidecarWithoutSeedIsRefused()
    {
        using var scratch = new Cli.Scratch();
        string model = Path.Combine(Fixtures.SharedModels ?? Fixtures.RequireRoot(), "fmnist-unet");
        File.WriteAllText(scratch["s.json"], $$"""{"file": "s.png", "model": "{{model}}", "sampler": "euler", "steps": 2, "cfg": 1.0, "sample_index": 0, "request_count": 1}""");
        FailsBeforeWork(Cli.Run("generate", "--from-sidecar", scratch["s.json"], "--out", scratch["o"]), 1, "no 'seed'", "an integer from 0 to");
    }
}
