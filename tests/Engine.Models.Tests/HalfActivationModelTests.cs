using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Models.Tests;

/// <summary>
/// Model fixtures with F16 / BF16 activations on the ILGPU device (float32 weights, float32 accumulation,
/// float32 time embedding), against diffusers' float32 outputs. End-to-end tolerances (max|err| / max|ref|):
/// fp16 1e-2, bf16 5e-2: a forward pass rounds the activations at every op (one unit is 4.9e-4 for fp16,
/// 3.9e-3 for bf16) through a few dozen ops; measured on the CPU accelerator: dit_tiny 5.6e-4 (f16) and
/// 5.3e-3 (bf16). The per-op tests (HalfActivationTests) prove each op rounds exactly once; here the CPU
/// accelerator runs the transformer and VAE fixtures only (the UNets take minutes there in half precision;
/// the sd_tiny pipeline test covers a UNet end to end).
/// </summary>
[TestFixture]
public sealed class HalfActivationModelTests
{
    private const double F16Tolerance = 1e-2, BF16Tolerance = 5e-2;

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var kind in TestDevices.Kinds.Where(k => k != "cpu"))
        {
            // A GPU runs every fixture; the CPU accelerator the quick ones.
            string[] f16 = kind == "ilgpu-cpu" ? ["dit_tiny", "sd3_tiny", "vae_tiny"] : [.. Fixtures.Folders("models")];
            string[] bf16 = kind == "ilgpu-cpu" ? ["dit_tiny", "vae_tiny"] : f16;
            foreach (var name in f16) yield return new TestCaseData(name, kind, DType.F16).SetName($"Model {name} on {kind} with f16 activations");
            foreach (var name in bf16) yield return new TestCaseData(name, kind, DType.BF16).SetName($"Model {name} on {kind} with bf16 activations");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDiffusersWithinHalfTolerance(string name, string kind, DType activations)
    {
        SupportedFixtures.RequireSupported(name);
        var device = TestDevices.Get(kind);
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", name);
        var outputs = ModelRunner.Run(device, Path.Combine(folder, "model"), Path.Combine(folder, "io.safetensors"), activations: activations);
        var fixture = Fixtures.Json(Path.Combine("models", name, "fixture.json"));
        using var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors"));
        double tolerance = activations == DType.F16 ? F16Tolerance : BF16Tolerance;
        int compared = 0;
        foreach (var output in fixture.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()!))
        {
            if (!outputs.TryGetValue(output, out var actual)) continue;
            double err = Fixtures.RelativeError(actual.Data, io.ReadFloats(output));
            TestContext.Out.WriteLine($"{name}/{output} on {kind}, {activations}: max|err|/max|ref| = {err:E2}");
            Assert.That(err, Is.LessThanOrEqualTo(tolerance), $"{name}/{output} on {kind} with {activations} activations");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(0), $"{name}: no output of fixture.json was produced");
    }

    [Test]
    public void CpuDeviceRefusesHalfActivations()
    {
        var device = TestDevices.Get("cpu");
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", "dit_tiny", "model");
        using var model = Loading.ModelLoader.Load(device, folder);
        var e = Assert.Throws<ArgumentException>(() => model.Activations = DType.F16)!;
        Assert.That(e.Message, Does.Contain("f16").And.Contain("f32"));
    }
}
