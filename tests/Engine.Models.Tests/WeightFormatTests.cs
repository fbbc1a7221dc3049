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

    public static IEnumerable<TestCaseData> StorageCases() =>
        from fixture in new[] { "unet2d_tiny", "dit_tiny" }
        from dtype in new[] { DType.F16, DType.BF16 }
        from kind in TestDevices.Kinds
        where kind == "cpu" || fixture == "dit_tiny" // the UNet takes ~40 s per run on the CPU accelerator; its kernels are covered by HalfWeightTests
        select new TestCaseData(fixture, dtype, kind).SetName($"Storage {fixture} as {dtype} on {kind}");

    /// <summary>
    /// Half-precision storage of an F32 checkpoint: Linear and Conv2d weights stay F16 / BF16 on the
    /// device (everything else F32), and the output equals that of an F32 checkpoint holding the rounded
    /// weights, since the kernels widen the stored values exactly.
    /// </summary>
    [TestCaseSource(nameof(StorageCases))]
    public void HalfStorageEqualsTheRoundedF32Model(string fixture, DType dtype, string kind)
    {
        var device = TestDevices.Get(kind);
        var io = Path.Combine(Fixtures.RequireRoot(), "models", fixture, "io.safetensors");
        using var rounded = new FixtureModelFiles(fixture);
        rounded.WriteWeights(rounded.ReadEntries().Select(e => e with { Data = e.Data.Select(v => Round(v, dtype)).ToArray() }));
        using (var model = Loading.ModelLoader.Load(device, rounded.Folder, dtype))
        using (var wide = Loading.ModelLoader.Load(device, rounded.Folder))
        {
            var half = model.Parameters.Where(p => p.AllowsHalfStorage).ToList();
            Assert.That(half, Is.Not.Empty);
            Assert.That(half.All(p => p.Tensor.DType == dtype), Is.True, "Linear and Conv2d weights keep the half storage");
            Assert.That(model.Parameters.Where(p => !p.AllowsHalfStorage).All(p => p.Tensor.DType == DType.F32), Is.True, "other parameters stay F32");
            TestContext.Out.WriteLine($"{fixture}: {model.ParameterBytes} bytes as {dtype}, {wide.ParameterBytes} as F32");
            Assert.That(model.ParameterBytes, Is.LessThan(wide.ParameterBytes * 3 / 4));
        }
        var fromStorage = ModelRunner.Run(device, rounded.Folder, io, dtype)["output"].Data;
        var fromRounded = ModelRunner.Run(device, rounded.Folder, io)["output"].Data;
        double err = Fixtures.RelativeError(fromStorage, fromRounded);
        TestContext.Out.WriteLine($"{fixture} {dtype} on {kind}: half storage vs rounded F32 weights {err:E2}");
        Assert.That(err, Is.LessThanOrEqualTo(1e-6));
    }
}
