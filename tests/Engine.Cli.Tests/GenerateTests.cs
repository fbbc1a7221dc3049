using System.Text.Json;
using Engine.Core.Safetensors;
using Engine.Imaging;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>engine generate</c>: diffusers' reference samples through --init-noise / --output-tensor, the
/// files it writes, the sidecar round trip and cancellation.
/// </summary>
public class GenerateTests
{
    public static IEnumerable<TestCaseData> ReferenceSettings()
    {
        // The settings are read from reference.json when the shared models are present.
        if (TestPaths.SharedRoot is null || !File.Exists(Path.Combine(TestPaths.SharedRoot, "models/fmnist-unet/reference/reference.json")))
        {
            yield return new TestCaseData("").SetName("Reference(shared models absent)");
            yield break;
        }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.SharedRoot, "models/fmnist-unet/reference/reference.json")));
        foreach (var s in doc.RootElement.GetProperty("settings").EnumerateObject())
            yield return new TestCaseData(s.Name).SetName($"Reference({s.Name})");
    }

    [TestCaseSource(nameof(ReferenceSettings))]
    public void InitNoiseAndOutputTensorReproduceDiffusersReferenceSamples(string setting)
    {
        string json = TestPaths.RequireShared("models/fmnist-unet/reference/reference.json");
        string tensors = Path.ChangeExtension(json, ".safetensors");
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var s = doc.RootElement.GetProperty("settings").GetProperty(setting);
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["scheduler_config.json"], s.GetProperty("scheduler_config").GetRawText());
        float[] labels, expected;
        using (var f = SafetensorsFile.Open(tensors))
        {
            labels = f.ReadFloats("labels");
            expected = f.ReadFloats(setting);
        }
        var r = Cli.Run("generate", "--model", "fmnist-unet", "--scheduler-config", scratch["scheduler_config.json"],
            "--steps", s.GetProperty("num_inference_steps").GetInt32().ToString(), "--cfg", s.GetProperty("cfg_scale").GetDouble().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--classes", string.Join(",", labels.Select(l => (int)l)), "--init-noise", tensors,
            "--output-tensor", scratch["samples.safetensors"], "--out", scratch["images"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var written = SafetensorsFile.Open(scratch["samples.safetensors"]);
        Assert.That(written.Info("samples").Shape, Is.EqualTo(new[] { labels.Length, 1, 28, 28 }));
        var actual = written.ReadFloats("samples");
        double err = 0, max = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            err = Math.Max(err, Math.Abs((double)actual[i] - expected[i]));
            max = Math.Max(max, Math.Abs(expected[i]));
        }
        TestContext.Out.WriteLine($"{setting}: max|err|/max|ref| = {err / max:E2}");
        Assert.That(err / max, Is.LessThanOrEqualTo(1e-3));
        Assert.That(Directory.GetFiles(scratch["images"], "*.png"), Has.Length.EqualTo(labels.Length + 1), "one PNG per image and the grid");
    }

    [Test]
    public void WritesPngsSidecarsAndGrid()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("generate", "--seed", "7", "--count", "3", "--steps", "2", "--sampler", "ddim", "--out", scratch.Path, "--device", "cpu", "--option", "cfg_rescale=0.5");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        string[] names = ["seed000007_i0000_class0", "seed000007_i0001_class1", "seed000007_i0002_class2"];
        foreach (var n in names)
        {
            var image = PngCodec.Read(Path.Combine(scratch.Path, n + ".png"));
            Assert.That((image.Width, image.Height, image.Channels), Is.EqualTo((28, 28, 1)));
            using var sidecar = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch.Path, n + ".json")));
            var root = sidecar.RootElement;
            Assert.That(root.GetProperty("seed").GetUInt64(), Is.EqualTo(7UL));
            Assert.That(root.GetProperty("sampler").GetString(), Is.EqualTo("ddim"));
            Assert.That(root.GetProperty("steps").GetInt32(), Is.EqualTo(2));
            Assert.That(root.GetProperty("cfg").GetDouble(), Is.EqualTo(3.0));
            Assert.That(root.GetProperty("options")[0].GetString(), Is.EqualTo("cfg_rescale=0.5"));
            Assert.That(root.GetProperty("model").GetString(), Does.EndWith("fmnist-unet"));
            Assert.That(root.GetProperty("engine_version").GetString(), Is.Not.Empty);
            Assert.That(root.GetProperty("device").GetString(), Is.EqualTo("cpu"));
        }
        Assert.That(new[] { 0, 1, 2 }.Select(i => JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch.Path, names[i] + ".json"))).RootElement.GetProperty("sample_index").GetInt32()), Is.EqualTo(new[] { 0, 1, 2 }));
        var grid = PngCodec.Read(Path.Combine(scratch.Path, "grid.png"));
        Assert.That(grid.Width, Is.GreaterThan(28 * 2), "the grid holds several images");
        Assert.That(r.Out, Does.Contain("wrote 3 images"));
    }

    [Test]
    public void SidecarRoundTripReproducesThePixels()
    {
        using var scratch = new Cli.Scratch();
        // A stochastic sampler (fresh noise every step), a seed list and a --seed/--count request in batches of 2.
        var a = Cli.Run("generate", "--seeds", "5,9", "--steps", "3", "--sampler", "euler_a", "--class", "4", "--out", scratch["a"], "--device", "cpu");
        Assert.That(a.Code, Is.EqualTo(ExitCodes.Success), a.ToString());
        var b = Cli.Run("generate", "--seed", "3", "--count", "3", "--batch", "2", "--steps", "3", "--sampler", "dpmpp_2m", "--schedule", "karras", "--out", scratch["b"], "--device", "cpu");
        Assert.That(b.Code, Is.EqualTo(ExitCodes.Success), b.ToString());
        foreach (var (folder, name) in new[] { ("a", "seed000009_class4"), ("b", "seed000003_i0002_class2"), ("b", "seed000003_i0000_class0") })
        {
            var again = Cli.Run("generate", "--from-sidecar", Path.Combine(scratch[folder], name + ".json"), "--out", scratch["again"]);
            Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
            Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], name + ".png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch[folder], name + ".png"))), name);
        }
        // Different seeds give different images (the comparison above can fail).
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["a"], "seed000005_class4.png")), Is.Not.EqualTo(File.ReadAllBytes(Path.Combine(scratch["a"], "seed000009_class4.png"))));
    }

    [Test]
    public void HalfWeightStorageIsRecordedAndReproduced()
    {
        using var scratch = new Cli.Scratch();
        foreach (var weights in new[] { "f32", "f16" })
        {
            var r = Cli.Run("generate", "--seed", "2", "--count", "1", "--steps", "3", "--class", "3", "--weights", weights, "--out", scratch[weights], "--device", "cpu");
            Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        }
        const string name = "seed000002_i0000_class3";
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["f16"], name + ".json"))))
            Assert.That(doc.RootElement.GetProperty("weights").GetString(), Is.EqualTo("f16"));
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["f32"], name + ".json"))))
            Assert.That(doc.RootElement.TryGetProperty("weights", out _), Is.False, "float32 weights are the default and not recorded");
        var again = Cli.Run("generate", "--from-sidecar", Path.Combine(scratch["f16"], name + ".json"), "--out", scratch["again"]);
        Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], name + ".png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["f16"], name + ".png"))));
    }

    [Test]
    public void PrecisionIsRecordedAndHalfIsRefusedOnTheCpuDevice()
    {
        using var scratch = new Cli.Scratch();
        var refused = Cli.Run("generate", "--seed", "2", "--count", "1", "--steps", "3", "--class", "3", "--precision", "f16", "--out", scratch["h"], "--device", "cpu");
        Assert.That(refused.Code, Is.Not.EqualTo(ExitCodes.Success), refused.ToString());
        Assert.That(refused.ToString(), Does.Contain("--precision").And.Contain("f32 activations"));
        Assert.That(Directory.Exists(scratch["h"]) && Directory.EnumerateFiles(scratch["h"], "*.png").Any(), Is.False, "refused before work");
        var r = Cli.Run("generate", "--seed", "2", "--count", "1", "--steps", "3", "--class", "3", "--precision", "f32", "--out", scratch["a"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        const string name = "seed000002_i0000_class3";
        using (var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(scratch["a"], name + ".json"))))
            Assert.That(doc.RootElement.GetProperty("precision").GetString(), Is.EqualTo("f32"));
        var again = Cli.Run("generate", "--from-sidecar", Path.Combine(scratch["a"], name + ".json"), "--out", scratch["again"]);
        Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["again"], name + ".png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["a"], name + ".png"))));
    }

    [Test]
    public void DistilledStudentWithTeacherRoundTripsThroughItsSidecar()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("generate", "--model", "fmnist-dit-student", "--teacher", "fmnist-dit", "--count", "2", "--steps", "2",
            "--option", "distill_lambda=0.5", "--option", "distill_guide_steps=1", "--out", scratch["a"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        string sidecar = Path.Combine(scratch["a"], "seed000000_i0001_class1.json");
        using (var doc = JsonDocument.Parse(File.ReadAllText(sidecar)))
            Assert.That(doc.RootElement.GetProperty("teacher").GetString(), Does.EndWith("fmnist-dit"));
        var again = Cli.Run("generate", "--from-sidecar", sidecar, "--out", scratch["b"]);
        Assert.That(again.Code, Is.EqualTo(ExitCodes.Success), again.ToString());
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000000_i0001_class1.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["a"], "seed000000_i0001_class1.png"))));
    }

    [Test]
    public void SeedListImageEqualsTheFirstImageOfThatSeed()
    {
        using var scratch = new Cli.Scratch();
        Assert.That(Cli.Run("generate", "--seeds", "11", "--class", "1", "--steps", "2", "--out", scratch["a"], "--device", "cpu").Code, Is.EqualTo(0));
        Assert.That(Cli.Run("generate", "--seed", "11", "--count", "1", "--class", "1", "--steps", "2", "--out", scratch["b"], "--device", "cpu").Code, Is.EqualTo(0));
        Assert.That(File.ReadAllBytes(Path.Combine(scratch["a"], "seed000011_class1.png")), Is.EqualTo(File.ReadAllBytes(Path.Combine(scratch["b"], "seed000011_i0000_class1.png"))));
    }

    /// <summary>Cancels when the second progress line arrives, i.e. after the first image is on disk.</summary>
    private sealed class CancellingWriter(CancellationTokenSource source, int afterLines) : StringWriter
    {
        private int _lines;

        public override void WriteLine(string? value)
        {
            base.WriteLine(value);
            if (value?.StartsWith("generate:", StringComparison.Ordinal) == true && ++_lines == afterLines) source.Cancel();
        }
    }

    [Test]
    public void CancellationLeavesOnlyCompleteFiles()
    {
        using var scratch = new Cli.Scratch();
        using var cts = new CancellationTokenSource();
        var r = Cli.Run(cts.Token, new CancellingWriter(cts, 2), "generate", "--seeds", "0-5", "--steps", "3", "--out", scratch.Path, "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Cancelled), r.ToString());
        Assert.That(r.Err, Does.Contain("cancelled"));
        var files = Directory.GetFiles(scratch.Path).Select(Path.GetFileName).Order().ToList();
        Assert.That(files, Has.None.EndsWith(AtomicFile.TempSuffix).And.None.StartsWith("."), "no temporary files");
        Assert.That(files, Has.No.Member("grid.png"), "a cancelled run writes no grid");
        var pngs = files.Where(f => f!.EndsWith(".png")).ToList();
        Assert.That(pngs, Is.EqualTo(new[] { "seed000000_class0.png" }), "the image finished before the cancel, and no other");
        foreach (var png in pngs)
        {
            Assert.That(PngCodec.Read(Path.Combine(scratch.Path, png!)).Width, Is.EqualTo(28));
            Assert.That(files, Has.Member(Path.ChangeExtension(png, ".json")));
        }
    }
}
