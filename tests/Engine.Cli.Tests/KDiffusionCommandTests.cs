using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>ComfyUI's sampler names through the command line: solver-bench with recorded draws, and the errors for names not available.</summary>
public class KDiffusionCommandTests
{
    // check.py's kdiffusion command line: --scheduler-config gives the SD 1.5 training schedule, step_noise the recorded draws.
    [TestCase("comfy_dpmpp_2m_sde_karras_n10")]
    [TestCase("comfy_euler_a_normal_n25")]
    public void SolverBenchReproducesAComfyUITrajectoryFromItsDraws(string name)
    {
        using var scratch = new Cli.Scratch();
        using var f = SafetensorsFile.Open(TestPaths.RequireShared($"fixtures/kdiffusion/{name}.safetensors"));
        var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(TestPaths.RequireShared($"fixtures/kdiffusion/{name}.json"))).RootElement;
        SafetensorsWriter.Write(scratch["g.safetensors"],
        [
            new("mu", f.Info("mu").Shape, f.ReadFloats("mu")), new("s", f.Info("s").Shape, f.ReadFloats("s")),
            new("noise", f.Info("noise").Shape, f.ReadFloats("noise")), new("step_noise", f.Info("draws").Shape, f.ReadFloats("draws")),
        ]);
        File.WriteAllText(scratch["sd15.json"], """{"_class_name": "EulerDiscreteScheduler", "num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "prediction_type": "epsilon"}""");
        var r = Cli.Run("solver-bench", "--gaussian", scratch["g.safetensors"], "--scheduler-config", scratch["sd15.json"], "--samplers", json.GetProperty("sampler").GetString()!,
            "--schedule", json.GetProperty("schedule").GetString()!, "--steps", json.GetProperty("steps").GetInt32().ToString(System.Globalization.CultureInfo.InvariantCulture),
            "--output", scratch["out.safetensors"], "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var o = SafetensorsFile.Open(scratch["out.safetensors"]);
        Assert.That(Fixtures.RelativeError(o.ReadFloats("final"), f.ReadFloats("final")), Is.LessThanOrEqualTo(1e-5));
    }

    [TestCase("uni_pc", "unipc_bh1")]
    [TestCase("dpmpp_sde_gpu", "dpmpp_sde")]
    public void UnavailableComfyUINamesAreUsageErrorsNamingTheNearest(string comfy, string nearest)
    {
        var r = Cli.Run("generate", "--sampler", comfy, "--steps", "2", "--device", "cpu");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain($"'{comfy}'").And.Contain($"'{nearest}'"));
    }

    [Test]
    public void SamplersSaysWhichConventionEachNameFollows()
    {
        var r = Cli.Run("samplers");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success));
        var lines = r.Out.Split('\n');
        Assert.That(lines.First(l => l.StartsWith("  dpmpp_2m ", StringComparison.Ordinal)), Does.Contain("comfyui"));
        Assert.That(lines.First(l => l.StartsWith("  deis_tab ", StringComparison.Ordinal)), Does.Contain("engine"));
        Assert.That(lines.First(l => l.StartsWith("  unipc ", StringComparison.Ordinal)), Does.Contain("diffusers"));
        Assert.That(r.Out, Does.Contain("uni_pc").And.Contain("ddim_uniform"));
    }
}
