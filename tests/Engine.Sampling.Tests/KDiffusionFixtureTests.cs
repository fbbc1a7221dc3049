using Engine.Core.Safetensors;
using Engine.Sampling.KDiffusion;
using Engine.Sampling.Schedules;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>
/// ComfyUI KSampler trajectories (fixtures kdiffusion/): the short names build ComfyUI's grid, call the
/// model at its integer timesteps, start from its scaled noise and reproduce its final sample on the CPU device.
/// </summary>
[TestFixture]
public class KDiffusionFixtureTests
{
    // The SD 1.5 training schedule of the fixtures (scaled_linear 0.00085..0.012, epsilon).
    private static SchedulerConfig Sd15 => SchedulerConfig.ParseJson(
        """{"_class_name":"EulerDiscreteScheduler","num_train_timesteps":1000,"beta_start":0.00085,"beta_end":0.012,"beta_schedule":"scaled_linear","prediction_type":"epsilon"}""");

    public static IEnumerable<string> Cases() => Fixtures.Names("kdiffusion", "comfy_*.json");

    private static (string Sampler, string Schedule, int Steps) Describe(string name)
    {
        var json = Fixtures.Json($"kdiffusion/{name}.json");
        return (json.GetProperty("sampler").GetString()!, json.GetProperty("schedule").GetString()!, json.GetProperty("steps").GetInt32());
    }

    [TestCaseSource(nameof(Cases))]
    public void GridTimestepsAndFinalMatchComfyUI(string name)
    {
        var (sampler, schedule, steps) = Describe(name);
        using var f = Fixtures.Tensors($"kdiffusion/{name}.safetensors");
        using var scheduler = SamplerNames.Create(Sd15, sampler, schedule, steps);
        Assert.That(scheduler, Is.InstanceOf<KSampler>());
        var ac = f.ReadFloats("alphas_cumprod");
        for (int i = 0; i < ac.Length; i++) Assert.That(scheduler.Training.AlphasCumprod[i], Is.EqualTo(ac[i]).Within(1e-6), $"alphas_cumprod {i}");
        var grid = f.ReadFloats("sigmas");
        Assert.That(scheduler.Sigmas!.Length, Is.EqualTo(grid.Length), "grid length (final 0 included)");
        for (int i = 0; i < grid.Length; i++)
            Assert.That(scheduler.Sigmas[i], Is.EqualTo(grid[i]).Within(2e-6 * grid[0]), $"sigma {i}");
        Assert.That(scheduler.Timesteps, Is.EqualTo(f.ReadFloats("model_timesteps").Select(v => (double)v)), "integer model timesteps");

        // A Gaussian spec as check.py writes it: mu, s, noise and (stochastic samplers) step_noise = the recorded draws.
        string spec = Path.Combine(Path.GetTempPath(), $"kdiffusion-{name}-{Environment.ProcessId}.safetensors");
        try
        {
            var tensors = new List<SafetensorsWriter.Entry>();
            foreach (var t in new[] { "mu", "s", "noise" }) tensors.Add(new(t, f.Info(t).Shape, f.ReadFloats(t)));
            if (f.Contains("draws")) tensors.Add(new(GaussianStepNoise.TensorName, f.Info("draws").Shape, f.ReadFloats("draws")));
            SafetensorsWriter.Write(spec, tensors);
            var r = SolverBench.Run(scheduler, name, spec, TestDevices.Get("cpu"));
            Assert.That(r.ModelCalls, Is.EqualTo(f.Info("model_timesteps").Shape[0]), "model calls");
            var want = f.ReadFloats("final");
            Assert.That(Fixtures.RelativeError(r.Final, want), Is.LessThanOrEqualTo(1e-5), "final within 1e-5 of max |final|");
        }
        finally { File.Delete(spec); }
    }

    [Test]
    public void StartIsNoiseTimesSqrtOnePlusSigmaMaxSquared()
    {
        using var f = Fixtures.Tensors("kdiffusion/comfy_euler_karras_n10.safetensors");
        using var scheduler = SamplerNames.Create(Sd15, "euler", "karras", 10);
        var noise = f.ReadFloats("noise");
        var xT = f.ReadFloats("x_T");
        var scaled = noise.Select(v => (float)(v * scheduler.InitNoiseSigma)).ToArray();
        Assert.That(Fixtures.RelativeError(scaled, xT), Is.LessThanOrEqualTo(1e-6));
    }
}
