using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>samplers, info, inspect, eval and solver-bench.</summary>
public class ToolCommandTests
{
    [Test]
    public void SamplersListsSamplersSchedulesGuidanceAndPlugins()
    {
        var r = Cli.Run("samplers");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success));
        foreach (var e in Engine.Sampling.SamplerNames.Samplers.Concat(Engine.Sampling.SamplerNames.Schedules))
            Assert.That(r.Out, Does.Contain($"  {e.Name} "), e.Name);
        foreach (var e in Engine.Sampling.Guidance.SamplingOptionCatalog.Entries)
            Assert.That(r.Out, Does.Contain($"  {e.Name} ").And.Contain(e.Keys[0]), e.Name);
    }

    [Test]
    public void InfoShowsVersionDevicesAndSimd()
    {
        var r = Cli.Run("info");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.StartWith($"engine {EngineVersion.Text}"));
        Assert.That(r.Out, Does.Contain("devices:").And.Contain("  cpu: ").And.Contain("default: "));
        Assert.That(r.Out, Does.Contain("simd:").And.Contain("Vector<float>: "));
        Assert.That(r.Out, Does.Contain(OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("ENGINE_CPU_ARENA") != "0"
            ? "cpu memory: arena for blocks of 64 KiB and more" : "cpu memory: system allocator"));
    }

    [Test]
    public void InspectListsTensorsAndMetadata()
    {
        using var scratch = new Cli.Scratch();
        string path = scratch["t.safetensors"];
        SafetensorsWriter.Write(path, [new("alpha", [2, 3], new float[6]), new("beta.weight", [4], new float[4])], new Dictionary<string, string> { ["format"] = "pt" });
        var r = Cli.Run("inspect", path);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        var lines = r.Out.Split('\n');
        Assert.That(lines.Any(l => l.StartsWith("alpha ") && l.Contains("F32") && l.Contains("[2, 3]") && l.TrimEnd().EndsWith(" 24")), r.Out);
        Assert.That(lines.Any(l => l.StartsWith("beta.weight ") && l.Contains("[4]") && l.TrimEnd().EndsWith(" 16")), r.Out);
        Assert.That(r.Out, Does.Contain("2 tensors, 10 elements, 40 bytes of data").And.Contain("format = pt"));

        File.WriteAllBytes(scratch["bad.safetensors"], [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 1, 2]);
        var bad = Cli.Run("inspect", scratch["bad.safetensors"]);
        Assert.That(bad.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(bad.Err, Does.Contain("bad.safetensors"));
        var missing = Cli.Run("inspect", scratch["missing.safetensors"]);
        Assert.That(missing.Code, Is.EqualTo(ExitCodes.Failure));
        Assert.That(missing.Err, Does.Contain("missing.safetensors: file does not exist"));
    }

    [Test]
    public void EvalPrintsATableRowPerRun()
    {
        var r = Cli.Run("eval", "--count", "1", "--compare", "ddim:2;euler:1,2", "--real-floor", "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        var lines = r.Out.Split('\n').Select(l => l.TrimEnd()).ToList();
        int header = lines.FindIndex(l => l.StartsWith("sampler") && l.Contains("NFE") && l.Contains("accuracy") && l.Contains("FD") && l.Contains("seconds"));
        Assert.That(header, Is.GreaterThanOrEqualTo(0), r.Out);
        var rows = lines.Skip(header + 1).Take(3).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.That(rows.Select(c => (c[0], c[1])), Is.EqualTo(new[] { ("ddim", "2"), ("euler", "1"), ("euler", "2") }));
        foreach (var c in rows)
        {
            Assert.That(c[2], Does.EndWith("%"));
            Assert.That(double.Parse(c[3], System.Globalization.CultureInfo.InvariantCulture), Is.GreaterThan(0));
        }
        Assert.That(r.Out, Does.Contain("real-data floor").And.Contain("fd_real_test64_vs_test_mean"));
    }

    [Test]
    public void SolverBenchWritesOneRunAndTabulatesSeveral()
    {
        string gaussian = TestPaths.RequireShared("fixtures/schedulers/dpm_ppo2_sl_eps_karras_n10.safetensors");
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["ddim.json"], """{"_class_name": "DDIMScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "timestep_spacing": "trailing"}""");
        var one = Cli.Run("solver-bench", "--scheduler-config", scratch["ddim.json"], "--steps", "10", "--gaussian", gaussian, "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(one.Code, Is.EqualTo(ExitCodes.Success), one.ToString());
        Assert.That(one.Out, Does.Contain("rms error"));
        using (var f = SafetensorsFile.Open(scratch["out.safetensors"]))
            Assert.That(f.Tensors.Keys.Order(), Is.EqualTo(new[] { "error", "exact", "final" }));

        var table = Cli.Run("solver-bench", "--samplers", "euler,dpmpp_2m", "--schedule", "karras", "--steps", "5,10,20", "--gaussian", gaussian, "--exact-sigma", "--device", "cpu");
        Assert.That(table.Code, Is.EqualTo(ExitCodes.Success), table.ToString());
        Assert.That(table.Out, Does.Contain("n=5").And.Contain("n=20").And.Contain("order").And.Contain("fitted").And.Contain("euler (karras)").And.Contain("dpmpp_2m (karras)"));

        var ranged = Cli.Run("solver-bench", "--samplers", "euler", "--schedule", "karras", "--steps", "6:8, 10:16:3", "--gaussian", gaussian, "--device", "cpu");
        Assert.That(ranged.Code, Is.EqualTo(ExitCodes.Success), ranged.ToString());
        var header = ranged.Out.Split('\n').First(l => l.StartsWith("solver"));
        Assert.That(header.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(w => w.StartsWith("n=")), Is.EqualTo(new[] { "n=6", "n=7", "n=8", "n=10", "n=13", "n=16" }));
    }

    [Test]
    public void SolverBenchReplaysRecordedStepNoiseWithEtaAndCustomTimesteps()
    {
        // The fixture file itself is a Gaussian spec with step_noise; its JSON gives config, gamma and timesteps.
        string gaussian = TestPaths.RequireShared("fixtures/fewstep/tcd_sl_eps_g0p3_custom_n4.safetensors");
        using var scratch = new Cli.Scratch();
        File.WriteAllText(scratch["tcd.json"], """{"_class_name": "TCDScheduler", "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012}""");
        var r = Cli.Run("solver-bench", "--scheduler-config", scratch["tcd.json"], "--steps", "4", "--timesteps", "999,599,90,19", "--eta", "0.3",
            "--gaussian", gaussian, "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using (var f = SafetensorsFile.Open(scratch["out.safetensors"]))
        using (var want = SafetensorsFile.Open(gaussian))
        {
            var got = f.ReadFloats("final");
            var expected = want.ReadFloats("final");
            Assert.That(got.Zip(expected, (a, b) => Math.Abs(a - b)).Max(), Is.LessThanOrEqualTo(1e-4 + 20 * 1.49e-5), "final against diffusers");
        }

        // Too few draws: an error naming the file before the run.
        using (var src = SafetensorsFile.Open(gaussian))
        {
            var noise = src.ReadFloats("noise");
            var shape = src.Info("noise").Shape.ToArray();
            SafetensorsWriter.Write(scratch["short.safetensors"],
                [new("mu", src.Info("mu").Shape.ToArray(), src.ReadFloats("mu")), new("s", src.Info("s").Shape.ToArray(), src.ReadFloats("s")),
                 new("noise", shape, noise), new("step_noise", [1, .. shape], noise)]);
        }
        var few = Cli.Run("solver-bench", "--scheduler-config", scratch["tcd.json"], "--steps", "4", "--eta", "0.3", "--gaussian", scratch["short.safetensors"], "--device", "cpu");
        Assert.That(few.Code, Is.Not.EqualTo(ExitCodes.Success), few.ToString());
        Assert.That(few.Err, Does.Contain("short.safetensors").And.Contain("step_noise holds 1 draw").And.Contain("makes 3"));

        var mismatch = Cli.Run("solver-bench", "--scheduler-config", scratch["tcd.json"], "--steps", "3", "--timesteps", "999,599,90,19", "--gaussian", gaussian, "--device", "cpu");
        Assert.That(mismatch.Code, Is.EqualTo(ExitCodes.Usage), mismatch.ToString());
        Assert.That(mismatch.Err, Does.Contain("--timesteps"));

        var noEta = Cli.Run("solver-bench", "--samplers", "euler_a", "--steps", "4", "--eta", "0.5", "--gaussian", gaussian, "--device", "cpu");
        Assert.That(noEta.Code, Is.Not.EqualTo(ExitCodes.Success), noEta.ToString());
        Assert.That(noEta.Err, Does.Contain("takes no eta"));
    }

    [TestCase("20:10", "ends before it starts")]
    [TestCase("5:x", "--steps")]
    [TestCase("1:2:3:4", "FIRST:LAST[:STEP]")]
    [TestCase("5:10:0", "--steps step")]
    [TestCase("1:20000", "--steps")]
    public void SolverBenchRejectsBadStepRanges(string steps, string message)
    {
        string gaussian = TestPaths.RequireShared("fixtures/schedulers/dpm_ppo2_sl_eps_karras_n10.safetensors");
        var r = Cli.Run("solver-bench", "--samplers", "euler", "--steps", steps, "--gaussian", gaussian, "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain(message));
    }
}
