using Engine.Core;
using Engine.Gpu;
using Engine.Generation;
using Engine.Sampling.Rng;

namespace Engine.Tests;

/// <summary>
/// <see cref="RngKind.Torch"/> requests: x_T is PyTorch's recorded <c>torch.randn</c> of the request's shape, and
/// the sampler draws continue the same generator for the whole request whatever the batch size.
/// </summary>
public class TorchRngGeneratorTests
{
    // fmnist-unet has one channel: [1, 1, 128, 128] is the same 16384-value randn call as the recorded [1, 4, 64, 64]
    // (seed 42), and [2, 1, 128, 192] the same 49152-value call as [2, 4, 96, 64] (seed 3141592653).
    [TestCase(42UL, 1, 128, 128, "c029.0")]
    [TestCase(3141592653UL, 2, 128, 192, "c079.0")]
    public void InitialNoiseIsTheRecordedTorchRandn(ulong seed, int count, int height, int width, string tensor)
    {
        using var fixture = Fixtures.Tensors("rng/cpu_randn.safetensors");
        var recorded = fixture.ReadFloats(tensor);
        Assert.That(recorded, Has.Length.EqualTo(count * height * width), "recorded call size");
        using var device = DeviceFactory.Create("cpu");
        using var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(TestPaths.Models, "fmnist-unet"));
        // dpmpp_2m draws nothing after x_T, so equal samples mean equal x_T.
        var request = new GenerationRequest { Sampler = "dpmpp_2m", Steps = 1, Count = count, Height = height, Width = width, ClassLabels = [3] };
        var torch = generator.Generate(model, request with { Seed = seed, Rng = RngKind.Torch });
        var given = generator.Generate(model, request with { InitialNoise = recorded });
        Assert.That(torch.Samples, Is.EqualTo(given.Samples));
    }

    [Test]
    public void StepDrawsFollowXTOnOneGeneratorForTheRequest()
    {
        using var device = DeviceFactory.Create("cpu");
        using var generator = new Generator(device);
        using var model = generator.LoadModel(Path.Combine(TestPaths.Models, "fmnist-unet"));
        // diffusers' EulerAncestralDiscreteScheduler on the model's schedule, as the short name euler_a meant before it took ComfyUI's meaning.
        string eulerA = File.ReadAllText(Path.Combine(TestPaths.Models, "fmnist-unet", "scheduler_config.json")).Replace("\"DDPMScheduler\"", "\"EulerAncestralDiscreteScheduler\"");
        var request = new GenerationRequest { SchedulerConfigJson = eulerA, Steps = 3, Count = 3, ClassLabels = [1], Seed = 8, Rng = RngKind.Torch };
        var whole = generator.Generate(model, request with { BatchSize = 3 });
        var split = generator.Generate(model, request with { BatchSize = 2 });
        Assert.That(Fixtures.RelativeError(split.Samples, whole.Samples), Is.LessThanOrEqualTo(1e-5), "batches read rows of one stream");

    }
}
