using Engine.Core.Safetensors;
using Engine.Sampling.KDiffusion;
using Engine.Tools;

namespace Engine.Sampling.Tests;

/// <summary>
/// ComfyUI's samplers declare the draws a run makes (<see cref="Scheduler.NoiseDraws"/>), so recorded step noise
/// with too few draws is refused before sampling, as for diffusers' classes, instead of running out mid-run.
/// </summary>
[TestFixture]
public class KSamplerDrawCountTests
{
    private static SchedulerConfig Sd15 => SchedulerConfig.ParseJson(
        """{"_class_name":"EulerDiscreteScheduler","beta_schedule":"scaled_linear","beta_start":0.00085,"beta_end":0.012}""");

    private static IEnumerable<string> Names => KSamplerCatalog.Entries.Select(e => e.Name);

    [TestCaseSource(nameof(Names))]
    public void DeclaredDrawsAreTheDrawsARunMakes(string name)
    {
        const int steps = 6, length = 8;
        using var scheduler = SamplerNames.Create(Sd15, name, "karras", steps);
        var noise = new RecordedNoise(new float[scheduler.NoiseDraws * length], scheduler.NoiseDraws, length);
        scheduler.Noise = noise;
        var device = TestDevices.Get("cpu");
        using var sample = device.Upload(Enumerable.Repeat(1f, length).ToArray(), 1, length);
        using var output = device.Upload(new float[length], 1, length);
        for (int i = 0; i < scheduler.CallCount; i++) scheduler.Step(output, i, sample);
        Assert.That(noise.Used, Is.EqualTo(scheduler.NoiseDraws), "draws made against draws declared");
        Assert.That(scheduler.NoiseDraws > 0, Is.EqualTo(scheduler.IsStochastic), "a stochastic sampler declares its draws");
    }

    [TestCase("euler_a")]
    [TestCase("dpmpp_sde")]
    [TestCase("dpm_2_a")]
    public void OneDrawShortIsRefusedBeforeSampling(string name)
    {
        using var scheduler = SamplerNames.Create(Sd15, name, "karras", 5);
        int draws = scheduler.NoiseDraws;
        string spec = Path.Combine(Path.GetTempPath(), $"kdraws-{name}-{Environment.ProcessId}.safetensors");
        try
        {
            SafetensorsWriter.Write(spec,
            [
                new("mu", [4], new float[4]), new("s", [4], [1f, 1f, 1f, 1f]), new("noise", [1, 4], [0.1f, -0.2f, 0.3f, 0.4f]),
                new(GaussianStepNoise.TensorName, [draws - 1, 1, 4], new float[(draws - 1) * 4]),
            ]);
            var e = Assert.Throws<ArgumentException>(() => SolverBench.Run(scheduler, name, spec, TestDevices.Get("cpu")));
            Assert.That(e!.Message, Does.Contain($"step_noise holds {draws - 1} draw").And.Contain($"makes {draws}"));
        }
        finally { File.Delete(spec); }
    }
}
