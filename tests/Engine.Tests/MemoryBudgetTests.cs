using Engine.Cpu;
using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Tests;

/// <summary>
/// <see cref="MemoryBudget.Estimate"/> against the device memory the tiny pipelines hold in each phase
/// (<see cref="Generator.Timing"/>'s live peaks, counted buffer by buffer, so the figures are exact): every
/// component's weights exactly, each phase's activations within 0.6-2 times the measured (tiny models are dominated by fixed 77-token
/// terms the formulas only approximate), and the
/// expected peak above every phase's measured peak.
/// </summary>
public class MemoryBudgetTests
{
    public static IEnumerable<TestCaseData> Pipelines()
    {
        foreach (var (folder, size, guidance, vaeTiling) in new[]
        {
            ("sd_tiny", 64, 7.5, VaeTiling.Off), ("sd_tiny", 128, 7.5, VaeTiling.On), ("sdxl_tiny", 64, 5.0, VaeTiling.Off),
            ("sd3_tiny_pipe", 64, 7.0, VaeTiling.Off), ("dit_pipe_tiny", 0, 4.0, VaeTiling.Off),
        })
            yield return new TestCaseData(folder, size, guidance, vaeTiling).SetName($"Estimate({folder},{size},{vaeTiling})");
    }

    [TestCaseSource(nameof(Pipelines))]
    public void EstimateCoversEveryPhaseOfTheTinyPipelines(string folder, int size, double guidance, VaeTiling vaeTiling)
    {
        using var device = new CpuDevice();
        using var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", folder, "pipeline"));
        bool prompts = model.Pipeline!.Prompts is not null;
        var request = new GenerationRequest
        {
            Steps = 2, GuidanceScale = guidance, Count = 2, Seed = 3, Width = size, Height = size, VaeTiling = vaeTiling,
            Prompts = prompts ? ["a photo of an astronaut", "a red cube"] : null,
            ClassLabels = prompts ? null : [1, 2],
            Sampler = folder == "sd3_tiny_pipe" ? "flow_euler" : null,
        };
        var (count, channels, height, width) = generator.OutputShape(model, request);
        var estimate = MemoryBudget.Estimate(model, request, count, channels, height, width, request.EffectiveBatchSize);

        long weights = device.Transfers.LiveBytes;
        Assert.That(estimate.Weights, Is.EqualTo(weights), "weights: every component");
        var phases = new Dictionary<string, long>();
        generator.Timing = t => phases[t.Phase] = t.PeakLiveBytes - weights;
        generator.Generate(model, request);

        void Phase(string phase, long estimated)
        {
            long measured = phases[phase];
            TestContext.Out.WriteLine($"{folder} {size}: {phase} estimated {estimated:N0} measured {measured:N0} ({(double)estimated / measured:F2}x)");
            Assert.That(estimated, Is.InRange(measured * 6 / 10, 2 * measured), phase);
            Assert.That(estimate.Peak, Is.GreaterThan(weights + measured), $"{phase}: the expected peak");
        }
        Assert.Multiple(() =>
        {
            if (prompts) Phase("text encoding", estimate.TextEncoding);
            Phase("denoising", estimate.Denoising);
            Phase("VAE decode", estimate.VaeDecode);
        });
    }
}
