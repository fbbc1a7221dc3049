using Engine.Core.Safetensors;
using Engine.Sampling.Rng;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>--rng torch</c> on generate, batch and sidecars: one generator serves the whole request whatever the
/// batch size, and a seed list is one generator per image (x_T against the recorded streams: Engine.Tests).
/// </summary>
[TestFixture]
public class TorchRngGenerateTests
{
    [Test]
    public void OneGeneratorPerRequestWhateverTheBatchSize_AndSidecarsRegenerate()
    {
        using var scratch = new Cli.Scratch();
        // diffusers' EulerAncestralDiscreteScheduler on the model's schedule, as the short name euler_a meant before it took ComfyUI's meaning.
        string eulerA = scratch["euler_a.json"];
        File.WriteAllText(eulerA, File.ReadAllText(Path.Combine(TestPaths.Models, "fmnist-unet", "scheduler_config.json")).Replace("\"DDPMScheduler\"", "\"EulerAncestralDiscreteScheduler\""));
        string[] common = ["generate", "--rng", "torch", "--seed", "11", "--count", "3", "--steps", "3", "--scheduler-config", eulerA, "--class", "2", "--device", "cpu"];
        var whole = Cli.Run([.. common, "--batch", "3", "--out", scratch["whole"], "--output-tensor", scratch["whole.safetensors"]]);
        Assert.That(whole.Code, Is.EqualTo(ExitCodes.Success), whole.ToString());
        var split = Cli.Run([.. common, "--batch", "2", "--out", scratch["split"], "--output-tensor", scratch["split.safetensors"]]);
        Assert.That(split.Code, Is.EqualTo(ExitCodes.Success), split.ToString());
        var a = Samples(scratch["whole.safetensors"]);
        var b = Samples(scratch["split.safetensors"]);
        Assert.That(Fixtures.RelativeError(b, a), Is.LessThanOrEqualTo(1e-5), "batch 2 + 1 reads the rows of the one stream");
        var philox = Cli.Run("generate", "--seed", "11", "--count", "3", "--steps", "3", "--scheduler-config", eulerA, "--class", "2", "--device", "cpu",
            "--out", scratch["philox"], "--output-tensor", scratch["philox.safetensors"]);
        Assert.That(philox.Code, Is.EqualTo(ExitCodes.Success), philox.ToString());
        Assert.That(Samples(scratch["philox.safetensors"]), Is.Not.EqualTo(a), "philox stays the default");

        string sidecar = scratch["split/seed000011_i0002_class2.json"];
        Assert.That(File.ReadAllText(sidecar), Does.Contain("\"rng\": \"torch\""));
        Assert.That(File.ReadAllText(scratch["philox/seed000011_i0002_class2.json"]), Does.Not.Contain("\"rng\""));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["again"]);
        Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(File.ReadAllBytes(scratch["again/seed000011_i0002_class2.png"]), Is.EqualTo(File.ReadAllBytes(scratch["split/seed000011_i0002_class2.png"])));
    }

    [Test]
    public void SeedListIsOneGeneratorPerImage_LikeBatchJobLines()
    {
        using var scratch = new Cli.Scratch();
        var list = Cli.Run("generate", "--rng", "torch", "--seed", "101,202", "--count", "2", "--steps", "2", "--sampler", "euler_a", "--class", "1",
            "--device", "cpu", "--out", scratch["list"]);
        Assert.That(list.Code, Is.EqualTo(ExitCodes.Success), list.ToString());
        var single = Cli.Run("generate", "--rng", "torch", "--seed", "202", "--count", "1", "--steps", "2", "--sampler", "euler_a", "--class", "1",
            "--device", "cpu", "--out", scratch["single"], "--output-tensor", scratch["single.safetensors"]);
        Assert.That(single.Code, Is.EqualTo(ExitCodes.Success), single.ToString());
        File.WriteAllText(scratch["jobs.jsonl"], "{\"model\": \"fmnist-unet\", \"seeds\": [101, 202], \"steps\": 2, \"sampler\": \"euler_a\", \"class\": 1, \"rng\": \"torch\"}\n");
        var batch = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["batch"]);
        Assert.That(batch.Code, Is.EqualTo(ExitCodes.Success), batch.ToString());
        Assert.That(File.ReadAllBytes(scratch["batch/seed000202_class1.png"]), Is.EqualTo(File.ReadAllBytes(scratch["list/seed000202_class1.png"])));
        Assert.That(File.ReadAllBytes(scratch["batch/seed000101_class1.png"]), Is.EqualTo(File.ReadAllBytes(scratch["list/seed000101_class1.png"])));
        Assert.That(File.ReadAllBytes(scratch["single/seed000202_i0000_class1.png"]), Is.EqualTo(File.ReadAllBytes(scratch["list/seed000202_class1.png"])));
    }

    [Test]
    public void BatchRngOptionIsTheDefaultOfLinesWithout()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["jobs.jsonl"], "{\"model\": \"fmnist-unet\", \"seed\": 5, \"steps\": 2, \"sampler\": \"euler_a\", \"class\": 3}\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--rng", "torch", "--out", scratch["a"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        var g = Cli.Run("generate", "--rng", "torch", "--seeds", "5", "--steps", "2", "--sampler", "euler_a", "--class", "3", "--device", "cpu", "--out", scratch["b"]);
        Assert.That(g.Code, Is.EqualTo(ExitCodes.Success), g.ToString());
        Assert.That(File.ReadAllBytes(scratch["a/seed000005_class3.png"]), Is.EqualTo(File.ReadAllBytes(scratch["b/seed000005_class3.png"])));
        Assert.That(File.ReadAllText(scratch["a/seed000005_class3.json"]), Does.Contain("\"rng\": \"torch\""));
    }

    [TestCase(new[] { "generate", "--rng", "jax" }, "--rng 'jax' must be one of philox, torch")]
    [TestCase(new[] { "generate", "--seed", "1,2", "--count", "3" }, "--count 3 but --seed lists 2 seeds")]
    [TestCase(new[] { "generate", "--seed", "1,1" }, "--seed lists a seed twice")]
    public void UsageErrors(string[] args, string message)
    {
        var r = Cli.Run(args);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain(message));
    }

    [Test]
    public void JobLineWithAnUnknownRngIsReported()
    {
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["jobs.jsonl"], "{\"model\": \"fmnist-unet\", \"rng\": \"numpy\"}\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu", "--out", scratch["a"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(r.Out + r.Err, Does.Contain("field 'rng' must be one of philox, torch"));
    }

    private static float[] Samples(string path)
    {
        using var f = SafetensorsFile.Open(path);
        return f.ReadFloats("samples");
    }
}
