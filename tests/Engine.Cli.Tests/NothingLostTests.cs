using System.Text.Json.Nodes;
using Engine.Imaging;

namespace Engine.Cli.Tests;

/// <summary>
/// Failures that must not cost finished work or pass as success: samples gone NaN, weights holding NaN,
/// Ctrl+C part way through a request, and damaged images on a resumed batch.
/// </summary>
public class NothingLostTests
{
    private static string[] Pngs(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "*.png").Select(f => Path.GetFileName(f)).Order().ToArray() : [];

    [Test]
    public void NaNWeightIsRefusedAtLoadNamingTheTensor()
    {
        using var scratch = new Cli.Scratch();
        string model = BrokenModels.WithNaNWeight(scratch["model"], BrokenModels.SomeTensor);
        var r = Cli.Run("generate", "--model", model, "--count", "2", "--steps", "2", "--out", scratch["out"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(r.Err, Does.Contain($"'{BrokenModels.SomeTensor}'").And.Contain("NaN or infinity"), r.ToString());
        Assert.That(Pngs(scratch["out"]), Is.Empty, "no black images from NaN weights");
    }

    [Test]
    public void SamplesGoneNaNFailTheRunNamingTheStep()
    {
        using var scratch = new Cli.Scratch();
        // Weights of about 1e30 overflow float32 in the first forward.
        string model = BrokenModels.Overflowing(scratch["model"]);
        var r = Cli.Run("generate", "--model", model, "--count", "2", "--steps", "3", "--out", scratch["out"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(r.Err, Does.Contain("NaN or infinite at step 1 of 3").And.Contain("overflow"), r.ToString());
        Assert.That(Pngs(scratch["out"]), Is.Empty, "no image is written from NaN samples");
    }

    [Test]
    public void BatchReportsANonFiniteJobFailed()
    {
        using var scratch = new Cli.Scratch();
        string model = BrokenModels.Overflowing(scratch["model"]);
        File.WriteAllText(scratch["jobs.jsonl"],
            $$"""{"model": "{{model}}", "seeds": "0-1", "class": 3, "steps": 2, "out": "{{scratch["nan"]}}"}""" + "\n" +
            $$"""{"model": "fmnist-unet", "seed": 4, "class": 3, "steps": 2, "out": "{{scratch["ok"]}}"}""" + "\n");
        var r = Cli.Run("batch", scratch["jobs.jsonl"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Failure), r.ToString());
        Assert.That(r.Err, Does.Contain("jobs.jsonl:1: job failed").And.Contain("NaN or infinite"), r.ToString());
        Assert.That(r.Out, Does.Contain("2 jobs (1 ok, 1 failed), 1 image written"), r.ToString());
        Assert.That(Pngs(scratch["nan"]), Is.Empty);
        Assert.That(Pngs(scratch["ok"]), Is.EqualTo(new[] { "seed000004_class3.png" }));
    }

    /// <summary>Cancels when the given progress line (one per finished batch) arrives.</summary>
    private sealed class CancelAtLine(CancellationTokenSource source, int line) : StringWriter
    {
        private int _lines;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.StartsWith("generate:", StringComparison.Ordinal) == true && ++_lines == line) source.Cancel();
        }
    }

    [Test]
    public void CancellingOneRequestKeepsItsFinishedBatches()
    {
        using var scratch = new Cli.Scratch();
        using var cts = new CancellationTokenSource();
        // One request of 8 images in batches of 2; the stop comes during the second batch's last step.
        var r = Cli.Run(cts.Token, new CancelAtLine(cts, 2), "generate", "--seed", "3", "--count", "8", "--batch", "2", "--class", "5",
            "--steps", "2", "--out", scratch.Path, "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Cancelled), r.ToString());
        var files = Directory.GetFiles(scratch.Path).Select(Path.GetFileName).Order().ToList();
        Assert.That(files, Has.None.EndsWith(AtomicFile.TempSuffix), "no temporary files");
        Assert.That(Pngs(scratch.Path), Is.EqualTo(new[] { "seed000003_i0000_class5.png", "seed000003_i0001_class5.png" }), "the first batch is on disk");
        Assert.That(files, Has.Member("seed000003_i0000_class5.json").And.Member("seed000003_i0001_class5.json"));

        // They are the images an uninterrupted run makes.
        Assert.That(Cli.Run("generate", "--seed", "3", "--count", "8", "--batch", "2", "--class", "5", "--steps", "2", "--out", scratch["whole"], "--device", "cpu").Code, Is.EqualTo(0));
        foreach (var png in Pngs(scratch.Path))
            Assert.That(File.ReadAllBytes(Path.Combine(scratch.Path, png)), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["whole"], png))), png);
    }

    [Test]
    public void ResumeRedoesDamagedImagesAndKeepsWholeOnes()
    {
        using var scratch = new Cli.Scratch();
        string jobs = scratch["jobs.jsonl"];
        File.WriteAllText(jobs, $$"""{"model": "fmnist-unet", "seeds": "0-4", "class": 2, "steps": 2, "out": "{{scratch["a"]}}"}""" + "\n");
        Assert.That(Cli.Run("batch", jobs, "--device", "cpu").Code, Is.EqualTo(ExitCodes.Success));
        string Png(int seed) => Path.Combine(scratch["a"], $"seed{seed:D6}_class2.png");
        var original = Enumerable.Range(0, 5).Select(s => File.ReadAllBytes(Png(s))).ToArray();
        var sidecar = JsonNode.Parse(File.ReadAllText(ImageSidecar.PathFor(Png(0))))!;
        Assert.That((long)sidecar["png_size"]!, Is.EqualTo(original[0].Length));
        Assert.That((string)sidecar["png_sha256"]!, Has.Length.EqualTo(64));

        File.WriteAllBytes(Png(0), original[0][..(original[0].Length / 2)]);            // truncated
        File.Delete(ImageSidecar.PathFor(Png(1)));                                       // sidecar deleted
        var altered = (byte[])original[2].Clone();
        altered[^20] ^= 0x55;                                                           // same size, other bytes
        File.WriteAllBytes(Png(2), altered);
        // An old sidecar without size and checksum: the PNG is checked by decoding, here a truncated one.
        var old = JsonNode.Parse(File.ReadAllText(ImageSidecar.PathFor(Png(3))))!.AsObject();
        old.Remove("png_size");
        old.Remove("png_sha256");
        File.WriteAllText(ImageSidecar.PathFor(Png(3)), old.ToJsonString());
        File.WriteAllBytes(Png(3), original[3][..(original[3].Length - 30)]);
        var stamp = File.GetLastWriteTimeUtc(Png(4));

        var again = Cli.Run("batch", jobs, "--device", "cpu");
        Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(again.Out, Does.Contain("4 images written, 1 skipped"), again.ToString());
        Assert.That(again.Err, Does.Contain("seed000000_class2.png is damaged").And.Contain("truncated"), again.ToString());
        Assert.That(again.Err, Does.Contain("seed000001_class2.png is damaged (its sidecar seed000001_class2.json is missing)"));
        Assert.That(again.Err, Does.Contain("seed000002_class2.png is damaged (its SHA-256 does not match its sidecar)"));
        Assert.That(again.Err, Does.Contain("seed000003_class2.png is damaged (it does not decode"));
        for (int s = 0; s < 5; s++) Assert.That(File.ReadAllBytes(Png(s)), Is.EqualTo(original[s]), $"seed {s} is whole again");
        Assert.That(File.Exists(ImageSidecar.PathFor(Png(1))));
        Assert.That(File.GetLastWriteTimeUtc(Png(4)), Is.EqualTo(stamp), "the whole image is not rewritten");
    }
}
