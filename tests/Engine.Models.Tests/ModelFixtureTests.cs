using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;
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

    // Every model runs on ILGPU's CPU accelerator too: about 2.5 minutes in all on the 2-core build
    // machine (the conditional UNets about 55 s each); ENGINE_TEST_ILGPU=0 leaves the accelerator out.

    public static IEnumerable<TestCaseData> Cases() =>
        from name in Fixtures.Folders("models")
        from kind in TestDevices.Kinds
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
