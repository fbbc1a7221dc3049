using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Cli.Tests;

/// <summary>
/// <c>--compute f32|bf16|auto</c>: parsed with a clear error, reported by <c>engine info</c>, recorded in the
/// sidecar, and <c>engine forward --compute bf16</c> on the conditional UNet fixture within 2e-2 of diffusers.
/// </summary>
[TestFixture]
public sealed class ComputeOptionTests
{
    [Test]
    public void UnknownPrecisionIsAUsageErrorNamingTheOption()
    {
        var r = Cli.Run("forward", "--model", "m", "--inputs", "i", "--output", "o", "--compute", "fp8");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Usage), r.ToString());
        Assert.That(r.Err, Does.Contain("--compute: unknown compute precision 'fp8'; supported: f32, bf16, auto"));
    }

    [Test]
    public void InfoSaysWhetherBf16ComputeIsAvailable()
    {
        var r = Cli.Run("info");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        Assert.That(r.Out, Does.Match(@"bf16 compute: (available via \S+libengine_bf16\.so \(AVX512-BF16 yes, |unavailable \()"));
    }

    [Test]
    public void SidecarRecordsTheComputeMode()
    {
        var sidecar = new ImageSidecar
        {
            File = "x.png", Model = "/m", Sampler = "euler", Steps = 4, Cfg = 2.5, Seed = 9,
            SampleIndex = 0, RequestCount = 1, Height = 28, Width = 28, Compute = "bf16",
        };
        Assert.That(sidecar.ToRequest("x.json").Compute, Is.EqualTo(ComputeMode.Bf16));
        Assert.That((sidecar with { Compute = null }).ToRequest("x.json").Compute, Is.EqualTo(ComputeMode.F32));
        Assert.That(() => (sidecar with { Compute = "f8" }).ToRequest("x.json").Compute,
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("x.json").And.Message.Contains("unknown compute precision 'f8'"));
    }

    [Test]
    public void ForwardInBf16StaysNearDiffusers()
    {
        using var device = new Engine.Cpu.CpuDevice(1);
        if (device.ComputeUnavailableReason(ComputePrecision.Bf16) is { } reason) Assert.Ignore($"bf16 compute unavailable: {reason}");
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "unet2d_cond_tiny");
        var io = Path.Combine(folder, "io.safetensors");
        using var scratch = new Cli.Scratch();
        var r = Cli.Run("forward", "--model", Path.Combine(folder, "model"), "--inputs", io, "--output", scratch["bf16.safetensors"], "--device", "cpu", "--compute", "bf16");
        Assert.That(r.Code, Is.EqualTo(ExitCodes.Success), r.ToString());
        using var written = SafetensorsFile.Open(scratch["bf16.safetensors"]);
        using var expected = SafetensorsFile.Open(io);
        double error = Fixtures.RelativeError(written.ReadFloats("output"), expected.ReadFloats("output"));
        TestContext.Out.WriteLine($"unet2d_cond_tiny in bf16: {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(2e-2));
        Assert.That(error, Is.GreaterThan(1e-6), "bf16 rounding shows in the output: the bf16 path ran");
    }
}
