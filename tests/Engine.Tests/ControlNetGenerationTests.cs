using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Generation;
using Engine.Models;
using Engine.Models.Networks;

namespace Engine.Tests;

/// <summary>
/// ControlNet runs through <see cref="Generator"/> on the tiny SD pipeline: no host transfer inside the sampling loop
/// (two nets, a window and guess mode with CFG), and every bad input refused by <see cref="Generator.OutputShape"/>
/// (before any sampling) with a message naming the option or file.
/// </summary>
public class ControlNetGenerationTests
{
    private Generator? _generator;
    private LoadedDenoiser? _model;

    private static string ControlNets => Path.Combine(Fixtures.RequireRoot(), "controlnet", "models");

    [OneTimeSetUp]
    public void Load()
    {
        if (Fixtures.Root is null) Assert.Ignore("fixtures not found (ENGINE_FIXTURES)");
        _generator = new Generator(TestDevices.Get("cpu"));
        _model = _generator.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sd_tiny", "pipeline"));
    }

    [OneTimeTearDown]
    public void Release()
    {
        _model?.Dispose();
        _generator?.Dispose();
    }

    private static ControlImage Image(int channels = 3, int count = 1, int height = 24, int width = 16, int seed = 3)
    {
        var random = new Random(seed);
        return new ControlImage
        {
            Pixels = Enumerable.Range(0, count * channels * height * width).Select(_ => (float)random.NextDouble()).ToArray(),
            Count = count, Channels = channels, Height = height, Width = width,
        };
    }

    private static GenerationRequest Request(params ControlNetSpec[] nets) => new()
    {
        Prompts = ["a photo of a cat"], Count = 2, Height = 24, Width = 16, Steps = 6, GuidanceScale = 4, Sampler = "dpmpp_2m", ControlNets = nets,
    };

    private static ControlNetSpec Net(string name, ControlImage? image = null) => new(Path.Combine(ControlNets, name), image ?? Image());

    [Test]
    public void ControlNetLoopMakesNoHostTransfer()
    {
        var device = _generator!.Device;
        foreach (bool guess in new[] { false, true })
        {
            var request = Request(Net("sd_tiny") with { Scale = 0.8, Start = 0.1, End = 0.9 }, Net("sd_tiny_b", Image(seed: 4)) with { Scale = 0.5 }) with { GuessMode = guess };
            long downloads = 0, uploads = 0;
            var result = _generator.Generate(_model!, request, p =>
            {
                // From the first step's end to the last's: the loop body of every later step.
                if (p.Step == 1) (downloads, uploads) = (device.Transfers.Downloads, device.Transfers.Uploads);
                if (p.Step == p.TotalSteps)
                {
                    Assert.That(device.Transfers.Downloads - downloads, Is.Zero, $"downloads inside the loop (guess mode {guess})");
                    Assert.That(device.Transfers.Uploads - uploads, Is.Zero, $"uploads inside the loop (guess mode {guess})");
                }
                return true;
            });
            Assert.That(result.Samples.All(float.IsFinite), Is.True);
            var plain = _generator.Generate(_model!, Request() with { GuessMode = false });
            Assert.That(Fixtures.RelativeError(result.Samples, plain.Samples), Is.GreaterThan(1e-3), "the ControlNets change the result");
        }
    }

    public static IEnumerable<TestCaseData> BadInputs()
    {
        yield return new TestCaseData("sdxl_tiny", null, 0.0, 1.0, false, "does not fit the UNet").SetName("ControlNet of another UNet layout is refused");
        yield return new TestCaseData("sd_tiny", 1, 0.0, 1.0, false, "has 1 channels; ControlNet").SetName("Control image channels other than conditioning_channels are refused");
        yield return new TestCaseData("sd_tiny", null, 0.7, 0.2, false, "--control-start").SetName("Window start above end is refused");
        yield return new TestCaseData("sd_tiny", null, -0.1, 1.0, false, "--control-start").SetName("Window start below 0 is refused");
        yield return new TestCaseData("sd_tiny", null, 0.0, 1.5, false, "--control-end").SetName("Window end above 1 is refused");
        yield return new TestCaseData(null, null, 0.0, 1.0, true, "--guess-mode").SetName("Guess mode without a ControlNet is refused");
        yield return new TestCaseData("missing", null, 0.0, 1.0, false, "--controlnet").SetName("A missing ControlNet folder is refused");
    }

    [TestCaseSource(nameof(BadInputs))]
    public void BadInputIsRefusedBeforeSampling(string? net, int? channels, double start, double end, bool guess, string message)
    {
        var request = (net is null ? Request() : Request(Net(net, Image(channels ?? 3)) with { Start = start, End = end })) with { GuessMode = guess };
        var e = Assert.Catch(() => _generator!.OutputShape(_model!, request));
        Assert.That(e!.Message, Does.Contain(message));
    }

    [Test]
    public void ControlImageCountMustBeOneOrOnePerImage()
    {
        var e = Assert.Catch(() => _generator!.OutputShape(_model!, Request(Net("sd_tiny", Image(count: 3)))));
        Assert.That(e!.Message, Does.Contain("holds 3 images for 2 outputs").And.Contain("--control-image"));
    }

    [Test]
    public void CrossAttentionWidthMismatchIsNamed()
    {
        // The SDXL pipeline's UNet has cross_attention_dim 40 and added conditioning; the SD ControlNet has neither.
        using var sdxl = _generator!.LoadModel(Path.Combine(Fixtures.RequireRoot(), "pipelines", "sdxl_tiny", "pipeline"));
        var e = Assert.Catch(() => _generator.OutputShape(sdxl, Request(Net("sd_tiny"))));
        Assert.That(e!.Message, Does.Contain("--controlnet").And.Contain("does not fit the UNet"));
    }

    public static IEnumerable<TestCaseData> ChangedNets()
    {
        yield return new TestCaseData("layers_per_block", JsonValue.Create(2), "block layout (residual channels) is [16, 16, 16, 16, 32, 32], the UNet's [16, 16, 16, 32]")
            .SetName("ControlNet with another block layout alone is refused");
        yield return new TestCaseData("block_out_channels", new JsonArray(16, 24), "block_out_channels is [16, 24], the UNet's [16, 32]")
            .SetName("ControlNet with other block widths alone is refused");
        yield return new TestCaseData("cross_attention_dim", JsonValue.Create(24), "cross_attention_dim is 24, the UNet's 32")
            .SetName("ControlNet with another cross-attention width alone is refused");
    }

    /// <summary>
    /// A copy of the sd_tiny ControlNet whose config differs in one field only (weights reshaped to fit it), so the
    /// check of that field alone is what refuses it: named with the folder and the option, before sampling.
    /// </summary>
    [TestCaseSource(nameof(ChangedNets))]
    public void ControlNetDifferingInOneFieldIsNamed(string field, JsonNode value, string message)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"engine-controlnet-{field}-{Guid.NewGuid():N}");
        try
        {
            ChangedCopy(folder, field, value);
            var e = Assert.Catch(() => _generator!.OutputShape(_model!, Request(Net(folder))));
            Assert.That(e!.Message, Does.Contain(folder).And.Contain("--controlnet").And.Contain(message));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void ControlImageChannelsFollowConditioningChannels()
    {
        // A one-channel ControlNet (a depth map) runs on one-channel images and refuses RGB ones.
        string folder = Path.Combine(Path.GetTempPath(), $"engine-controlnet-depth-{Guid.NewGuid():N}");
        try
        {
            ChangedCopy(folder, "conditioning_channels", JsonValue.Create(1));
            var result = _generator!.Generate(_model!, Request(Net(folder, Image(channels: 1))) with { Steps = 2 });
            Assert.That(result.Samples.All(float.IsFinite), Is.True);
            var e = Assert.Catch(() => _generator.OutputShape(_model!, Request(Net(folder, Image(channels: 3)))));
            Assert.That(e!.Message, Does.Contain("--control-image").And.Contain("has 3 channels").And.Contain("conditioning_channels = 1"));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// Writes sd_tiny's ControlNet with <paramref name="field"/> set to <paramref name="value"/>: every tensor the
    /// changed network declares keeps the fixture's values where the shape is unchanged and gets small ones otherwise.
    /// </summary>
    private static void ChangedCopy(string folder, string field, JsonNode value)
    {
        string source = Path.Combine(ControlNets, "sd_tiny");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        config[field] = value;
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        var net = new ControlNetModel(ModelConfig.Parse(config.ToJsonString(), folder));
        using var weights = SafetensorsFile.Open(Path.Combine(source, "diffusion_pytorch_model.safetensors"));
        var entries = net.Parameters.Select(p =>
        {
            bool same = weights.Contains(p.Key) && weights.Info(p.Key).Shape.SequenceEqual(p.Shape);
            var data = same ? weights.ReadFloats(p.Key) : Enumerable.Range(0, p.Shape.Aggregate(1, (n, d) => n * d)).Select(i => 0.01f * MathF.Sin(i)).ToArray();
            return new SafetensorsWriter.Entry(p.Key, p.Shape, data);
        }).ToList();
        SafetensorsWriter.Write(Path.Combine(folder, "diffusion_pytorch_model.safetensors"), entries);
    }
}
