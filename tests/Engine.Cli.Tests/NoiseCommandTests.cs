using Engine.Core;
using Engine.Gpu;
using Engine.Core.Safetensors;
using Engine.Sampling.Rng;

namespace Engine.Cli.Tests;

/// <summary><c>engine noise</c>: PyTorch's CPU-generator draws (against the recorded streams) and the Philox draws generate uses.</summary>
[TestFixture]
public class NoiseCommandTests
{
    [Test]
    public void TorchDrawsAreTheRecordedSequence()
    {
        // Case 90 (seed 5): randn(1), randn(16), randn(1), randn(2) on one generator; the third returns the first's cached sine.
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("noise", "--rng", "torch", "--seed", "5", "--shape", "1", "--shape", "16", "--shape", "1", "--shape", "2", "--output", scratch["n.safetensors"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Contain("wrote 4 draws of seed 5 (torch)"));
        using var got = SafetensorsFile.Open(scratch["n.safetensors"]);
        using var want = Fixtures.Tensors("rng/cpu_randn.safetensors");
        for (int k = 0; k < 4; k++)
            Assert.That(got.ReadFloats($"draw_{k}"), Is.EqualTo(want.ReadFloats($"c090.{k}")), $"draw_{k}");
    }

    [Test]
    public void TorchShapeIsKeptAndPortableKernelSelectable()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("noise", "--rng", "torch", "--seed", "42", "--shape", "3,4,17,9", "--kernel", "portable", "--output", scratch["n.safetensors"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var got = SafetensorsFile.Open(scratch["n.safetensors"]);
        Assert.That(got.Info("draw_0").Shape, Is.EqualTo(new[] { 3, 4, 17, 9 }));
        var expected = new float[3 * 4 * 17 * 9];
        new TorchCpuGenerator(42, TorchNormalKernel.Portable).Randn(expected);
        Assert.That(got.ReadFloats("draw_0"), Is.EqualTo(expected));
    }

    [Test]
    public void PhiloxDrawKIsTheEngineStreamAtCounterK()
    {
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("noise", "--seed", "9", "--shape", "2,3", "--shape", "2,3", "--output", scratch["n.safetensors"]);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var got = SafetensorsFile.Open(scratch["n.safetensors"]);
        using var device = DeviceFactory.Create("cpu");
        for (int k = 0; k < 2; k++)
        {
            using var t = device.Allocate(2, 3);
            device.RandomNormal(t, 9, 0, k);
            Assert.That(got.ReadFloats($"draw_{k}"), Is.EqualTo(device.Download(t)), $"draw_{k}");
        }
    }

    [TestCase(new[] { "noise", "--output", "x.safetensors" }, "option --shape is required")]
    [TestCase(new[] { "noise", "--shape", "2", "--output", "x.safetensors", "--rng", "numpy" }, "--rng 'numpy' must be one of philox, torch")]
    [TestCase(new[] { "noise", "--shape", "2,0", "--output", "x.safetensors" }, "--shape 0 must be between 1")]
    [TestCase(new[] { "noise", "--shape", "2", "--output", "x.safetensors", "--kernel", "portable" }, "--kernel goes with --rng torch")]
    public void UsageErrors(string[] args, string message)
    {
        var r = Cli.Run(args);
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain(message));
    }

    [Test]
    public void HelpDescribesBothGenerators()
    {
        var r = Cli.Run("noise", "--help");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success));
        Assert.That(r.Out, Does.Contain("--rng torch").And.Contain("manual_seed(S)").And.Contain("draw_0"));
    }
}
