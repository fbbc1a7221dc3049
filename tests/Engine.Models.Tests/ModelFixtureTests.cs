using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Models.Tests;

/// <summary>
/// Every model fixture in <c>fixtures/models</c> on every test device: the folder is loaded by class
/// name, the forward pass(es) run on the inputs of io.safetensors, and every output listed in
/// fixture.json is compared at 1e-3 relative (max|err| / max|ref|).
/// </summary>
[TestFixture]
public sealed class ModelFixtureTests
{
    private const double Tolerance = 1e-3;

    // The ILGPU CPU accelerator emulates GPU threads and is slow on whole models: measured on the
    // 2-core build machine, dit_tiny takes 10 s there, sd3_tiny 3 s, unet2d_tiny 41 s, vae_tiny 56 s and the
    // conditional UNets 2.5 min each. By default only the models under ~20 s run on ilgpu-cpu (every
    // module fixture still runs there, and GPU kinds run every model); ENGINE_TEST_SLOW=1 runs them all.
    private static readonly HashSet<string> IlgpuCpuModels = ["dit_tiny", "sd3_tiny"];

    private static bool RunSlow => Environment.GetEnvironmentVariable("ENGINE_TEST_SLOW") == "1";

    public static IEnumerable<TestCaseData> Cases() =>
        from name in Fixtures.Folders("models")
        from kind in TestDevices.Kinds
        where kind != "ilgpu-cpu" || RunSlow || IlgpuCpuModels.Contains(name)
        select new TestCaseData(name, kind).SetName($"Model {name} on {kind}");

    [Test]
    public void ModelFixturesAreDiscovered()
    {
        Fixtures.RequireRoot();
        Assert.That(Fixtures.Folders("models").Count(), Is.GreaterThanOrEqualTo(7));
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDiffusers(string name, string kind)
    {
        SupportedFixtures.RequireSupported(name);
        var device = TestDevices.Get(kind);
        var folder = Path.Combine(Fixtures.RequireRoot(), "models", name);
        var outputs = ModelRunner.Run(device, Path.Combine(folder, "model"), Path.Combine(folder, "io.safetensors"));
        var fixture = Fixtures.Json(Path.Combine("models", name, "fixture.json"));
        using var io = SafetensorsFile.Open(Path.Combine(folder, "io.safetensors"));
        int compared = 0;
        foreach (var output in fixture.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()!))
        {
            if (!outputs.TryGetValue(output, out var actual)) continue;
            Assert.That(actual.Shape, Is.EqualTo(io.Info(output).Shape), $"{name}/{output} shape");
            double err = Fixtures.RelativeError(actual.Data, io.ReadFloats(output));
            TestContext.Out.WriteLine($"{name}/{output} on {kind}: max|err|/max|ref| = {err:E2}");
            Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"{name}/{output} on {kind}");
            compared++;
        }
        Assert.That(compared, Is.GreaterThan(0), $"{name}: no output of fixture.json was produced");
    }
}
