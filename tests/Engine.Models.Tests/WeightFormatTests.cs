using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Models.Tests;

/// <summary>
/// F16 and BF16 checkpoints: the weights are converted to float32 on the device, so a model loaded
/// from an F16 (BF16) file must give the same outputs as one loaded from an F32 file holding the same
/// rounded values, and stay close to the F32 reference (within what the rounding of the weights moves it).
/// </summary>
[TestFixture]
public sealed class WeightFormatTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        from fixture in new[] { "unet2d_tiny", "dit_tiny" }
        from dtype in new[] { DType.F16, DType.BF16 }
        select new TestCaseData(fixture, dtype).SetName($"Weights {fixture} as {dtype}");

    private static float Round(float v, DType dtype) =>
        dtype == DType.F16 ? (float)(Half)v : DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v));

    [TestCaseSource(nameof(Cases))]
    public void HalfPrecisionWeightsMatchTheirRoundedF32Copy(string fixture, DType dtype)
    {
        var device = TestDevices.Get("cpu");
        var io = Path.Combine(Fixtures.RequireRoot(), "models", fixture, "io.safetensors");
        using var half = new FixtureModelFiles(fixture);
        using var rounded = new FixtureModelFiles(fixture);
        var entries = half.ReadEntries();
        half.WriteWeights(entries.Select(e => e with { DType = dtype }));
        rounded.WriteWeights(entries.Select(e => e with { Data = e.Data.Select(v => Round(v, dtype)).ToArray() }));
        using (var f = SafetensorsFile.Open(half.WeightsPath))
            Assert.That(f.Tensors.Values.Select(t => t.Type.ToString()).Distinct(), Is.EqualTo(new[] { dtype.ToString() }));

        var fromHalf = ModelRunner.Run(device, half.Folder, io)["output"].Data;
        var fromRounded = ModelRunner.Run(device, rounded.Folder, io)["output"].Data;
        Assert.That(Fixtures.RelativeError(fromHalf, fromRounded), Is.EqualTo(0), "device conversion must equal host rounding");

        using var expected = SafetensorsFile.Open(io);
        double err = Fixtures.RelativeError(fromHalf, expected.ReadFloats("output"));
        TestContext.Out.WriteLine($"{fixture} {dtype}: max|err|/max|ref| vs the F32 reference = {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(dtype == DType.F16 ? 5e-3 : 4e-2), "half-precision weights moved the output more than their rounding explains");
    }
}
