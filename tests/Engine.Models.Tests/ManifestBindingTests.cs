using System.Text.Json;
using System.Text.Json.Nodes;
using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>
/// Dry-run bindings against the key manifests of real checkpoints (SD 1.5 UNet and VAE, DiT-XL/2,
/// DDPM CIFAR-10): each network is built from the manifest's configuration without weights and every
/// listed key must bind with its shape (also under the legacy attention names, where the manifest
/// lists them), with the parameter count the manifest states.
/// </summary>
[TestFixture]
public sealed class ManifestBindingTests
{
    public static IEnumerable<TestCaseData> Cases() =>
        Fixtures.Names("manifests").Select(n => new TestCaseData(n).SetName($"Manifest {n} binds"));

    public static IEnumerable<TestCaseData> LegacyCases() =>
        Fixtures.Names("manifests").Select(n => new TestCaseData(n).SetName($"Manifest {n} binds legacy attention names"));

    private static (JsonElement Manifest, ModelConfig Config, ShapeListWeightSource Source) Open(string name, string? className = null)
    {
        var manifest = Fixtures.Json(Path.Combine("manifests", name + ".json"));
        var config = JsonNode.Parse(manifest.GetProperty("config").GetRawText())!.AsObject();
        config["_class_name"] = className ?? manifest.GetProperty("class").GetString();
        var shapes = manifest.GetProperty("keys").EnumerateArray().ToDictionary(
            k => k.GetProperty("key").GetString()!, k => k.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        return (manifest, ModelConfig.Parse(config.ToJsonString(), $"manifest {name}"), new ShapeListWeightSource($"manifest {name}", shapes));
    }

    [TestCaseSource(nameof(Cases))]
    public void EveryKeyBindsWithItsShape(string name)
    {
        var (manifest, config, source) = Open(name);
        using var model = ModelLoader.Build(config);
        model.CheckBinding(source);
        Assert.That(model.Parameters, Has.Count.EqualTo(manifest.GetProperty("num_keys").GetInt32()));
        Assert.That(model.ParameterCount, Is.EqualTo(manifest.GetProperty("num_parameters").GetInt64()));
        foreach (var buffer in manifest.GetProperty("non_persistent_buffers").EnumerateArray())
            Assert.That(model.Parameters.Select(p => p.Key), Does.Not.Contain(buffer.GetString()), "non-persistent buffers are computed, not loaded");
    }

    [TestCaseSource(nameof(LegacyCases))]
    public void LegacyAttentionNamesBind(string name)
    {
        var (manifest, config, source) = Open(name);
        var aliases = manifest.GetProperty("legacy_attention_key_aliases").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        if (aliases.Count == 0) Assert.Ignore($"{name} has no legacy attention names.");
        var renamed = source.Keys.ToDictionary(k => aliases.GetValueOrDefault(k, k), source.Shape);
        using var model = ModelLoader.Build(config);
        model.CheckBinding(new ShapeListWeightSource($"manifest {name} (legacy names)", renamed));
    }

    [Test]
    public void HubDiTSavedAsTransformer2DModelBinds()
    {
        var (manifest, config, source) = Open("dit_xl_2_256_keys", "Transformer2DModel");
        Assume.That(manifest.GetProperty("transformer2dmodel_same_keys").GetBoolean());
        using var model = ModelLoader.Build(config);
        model.CheckBinding(source);
    }

    [Test]
    public void DryRunReportsEveryProblemAtOnce()
    {
        var (_, config, source) = Open("sd15_vae_keys");
        var shapes = source.Keys.ToDictionary(k => k, source.Shape);
        shapes.Remove("decoder.conv_in.bias");
        shapes["decoder.extra.weight"] = [3];
        shapes["encoder.conv_in.weight"] = [1, 2, 3, 3];
        using var model = ModelLoader.Build(config);
        var e = Assert.Throws<ModelLoadException>(() => model.CheckBinding(new ShapeListWeightSource("edited manifest", shapes)))!;
        Assert.That(e.Message, Does.Contain("edited manifest").And.Contain("1 missing: 'decoder.conv_in.bias'")
            .And.Contain("1 unexpected: 'decoder.extra.weight'").And.Contain("'encoder.conv_in.weight' expected [128, 3, 3, 3], found [1, 2, 3, 3]"));
    }
}
