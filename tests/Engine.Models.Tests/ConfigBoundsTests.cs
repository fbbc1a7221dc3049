using System.Diagnostics;
using System.Text.Json.Nodes;
using Engine.Core.Safetensors;
using Engine.Models.Binding;
using Engine.Models.Loading;

namespace Engine.Models.Tests;

/// <summary>
/// Configurations that cannot match their weights, or hold sizes no model has, are refused when the
/// folder is loaded, naming the field and its allowed values, before the network is built.
/// </summary>
[TestFixture]
public sealed class ConfigBoundsTests
{
    private static ModelLoadException LoadFails(string fixture, string field, JsonNode? value, out TimeSpan elapsed)
    {
        using var files = new FixtureModelFiles(fixture);
        files.CopyWeights();
        var config = JsonNode.Parse(File.ReadAllText(files.ConfigPath))!.AsObject();
        config[field] = value;
        File.WriteAllText(files.ConfigPath, config.ToJsonString());
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Load(TestDevices.Get("cpu"), files.Folder).Dispose())!;
        elapsed = clock.Elapsed;
        Assert.That(e.Message, Does.Contain(files.ConfigPath));
        return e;
    }

    // The bound on the time is a hang guard (today's loader took 110 s for 1000 layers and never ended
    // for a million), far above what the refusal takes; it measures nothing.
    [TestCase(1000, "'layers_per_block' = 1000 cannot match", "which holds 1 (expected 1 to 1)")]
    [TestCase(1_000_000, "'layers_per_block' = 1000000 is invalid", "an integer from 1 to 1024")]
    public void DeepLayersPerBlockIsRefusedAtOnce(int layers, string named, string allowed)
    {
        var e = LoadFails("unet2d_tiny", "layers_per_block", layers, out var elapsed);
        Assert.That(e.Message, Does.Contain(named).And.Contain(allowed));
        Assert.That(elapsed, Is.LessThan(TimeSpan.FromSeconds(10)));
    }

    [Test]
    public void DeepTransformerIsRefusedAgainstTheFile()
    {
        var e = LoadFails("dit_tiny", "num_layers", 900, out _);
        Assert.That(e.Message, Does.Contain("'num_layers' = 900 cannot match").And.Contain("which holds 2"));
    }

    [Test]
    public void DeepVaeIsRefusedAgainstTheFile()
    {
        var e = LoadFails("vae_tiny", "layers_per_block", 500, out _);
        Assert.That(e.Message, Does.Contain("'layers_per_block' = 500 cannot match"));
    }

    [TestCase("unet2d_tiny", "in_channels", -1, "an integer from 1 to 65536")]
    [TestCase("unet2d_tiny", "sample_size", -16, "an integer from 1 to 65536")]
    [TestCase("vae_tiny", "latent_channels", 0, "an integer from 1 to 65536")]
    [TestCase("dit_tiny", "patch_size", 0, "an integer from 1 to 64")]
    [TestCase("dit_tiny", "num_attention_heads", -2, "an integer from 1 to 4096")]
    [TestCase("dit_tiny", "sample_size", -8, "an integer from 1 to 65536")]
    public void OutOfRangeSizeIsNamedWithItsRange(string fixture, string field, int value, string allowed)
    {
        var e = LoadFails(fixture, field, value, out _);
        Assert.That(e.Message, Does.Contain($"'{field}' = {value} is invalid; expected {allowed}"));
    }

    [TestCase(-1.0)]
    [TestCase(0.0)]
    public void NonPositiveNormEpsIsNamed(double eps)
    {
        var e = LoadFails("dit_tiny", "norm_eps", eps, out _);
        Assert.That(e.Message, Does.Contain("'norm_eps'").And.Contain("a number from 1E-30 to 1"));
    }

    // A zero scale divides by zero at the first step (the sample went non-finite); a negative one flips the signal silently.
    [TestCase("unet2d_tiny", "mid_block_scale_factor", 0.0)]
    [TestCase("unet2d_cond_tiny", "mid_block_scale_factor", -1.0)]
    [TestCase("vae_tiny", "scaling_factor", 0.0)]
    public void NonPositiveScaleFactorIsNamed(string fixture, string field, double value)
    {
        var e = LoadFails(fixture, field, value, out _);
        Assert.That(e.Message, Does.Contain($"'{field}'").And.Contain("a number from 1E-06 to 1000000"));
    }

    [Test]
    public void BlockListLongerThanTheFileStopsAtTheTensorCount()
    {
        // No depth field names the fault here (a file without transformer blocks), so the build stops once
        // it declares far more parameters than the file holds tensors (2 x tensors + 256).
        using var header = SafetensorsFile.Open(Path.Combine(Fixtures.RequireRoot(), "models", "dit_tiny", "model", "diffusion_pytorch_model.safetensors"));
        var shapes = header.Tensors.Values.Where(t => !t.Name.StartsWith("transformer_blocks.", StringComparison.Ordinal)).ToDictionary(t => t.Name, t => t.Shape.ToArray());
        var config = ModelConfig.Parse("""{"_class_name": "DiTTransformer2DModel", "num_layers": 1000, "in_channels": 4, "out_channels": 8, "num_embeds_ada_norm": 10, "sample_size": 8, "attention_head_dim": 16, "num_attention_heads": 2}""", "cfg");
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Build(config, new ShapeListWeightSource("hdr", shapes)))!;
        Assert.That(e.Message, Does.Contain("cannot match hdr").And.Contain($"declares more than {2 * shapes.Count + 256} parameters").And.Contain($"the weights hold {shapes.Count} tensors"));
    }

    [Test]
    public void ScopeRefusesDuplicatesAndParametersPastItsLimit()
    {
        var scope = new ParameterScope(3);
        scope.Sub("a").Add("weight", [1]);
        Assert.That(() => scope.Sub("a").Add("weight", [1]), Throws.InvalidOperationException.With.Message.Contains("'a.weight' is declared twice"));
        scope.Sub("b").Add("weight", [1]);
        scope.Sub("c").Add("weight", [1]);
        var e = Assert.Throws<ParameterLimitException>(() => scope.Sub("d").Add("weight", [1]))!;
        Assert.That(e.Message, Does.Contain("more than 3 parameters (stopped at 'd.weight')"));
        Assert.That(scope.All.Select(p => p.Key), Is.EqualTo(new[] { "a.weight", "b.weight", "c.weight" }));
    }
}
