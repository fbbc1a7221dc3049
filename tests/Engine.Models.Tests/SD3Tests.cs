using Engine.Core.Safetensors;
using Engine.Models.Binding;
using Engine.Models.Loading;
using Engine.Models.Modules;
using Engine.Models.Networks;

namespace Engine.Models.Tests;

/// <summary>
/// SD3-specific behaviour beyond the whole-model fixture: the stored position table is diffusers'
/// 2-D sin-cos table, the RMS q/k norm (no fixture covers it) matches a float64 reference, the
/// SD3.5 configuration keys are declared or rejected by name, and bad inputs are named.
/// </summary>
[TestFixture]
public sealed class SD3Tests
{
    private const string Fixture = "sd3_tiny";

    private static string ModelFolder => Path.Combine(Fixtures.RequireRoot(), "models", Fixture, "model");

    private static ModelConfig EditedConfig(string key, string jsonValue)
    {
        var json = File.ReadAllText(Path.Combine(ModelFolder, "config.json"));
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        node[key] = System.Text.Json.Nodes.JsonNode.Parse(jsonValue);
        return ModelConfig.Parse(node.ToJsonString(), $"{Fixture} config with {key} = {jsonValue}");
    }

    [Test]
    public void StoredPositionTableIsTheSinCosTableOfTheMaxGrid()
    {
        var config = ModelConfig.Load(Path.Combine(ModelFolder, "config.json"));
        int max = config.Int("pos_embed_max_size", 0), patch = config.Int("patch_size", 0), sample = config.Int("sample_size", 0);
        int dim = config.Int("num_attention_heads", 0) * config.Int("attention_head_dim", 0);
        using var weights = SafetensorsFile.Open(Path.Combine(ModelFolder, "diffusion_pytorch_model.safetensors"));
        var stored = weights.ReadFloats("pos_embed.pos_embed");
        var host = SinCosPositionEmbedding.Create(dim, max, max, baseSize: sample / patch);
        Assert.That(stored.Length, Is.EqualTo(host.Length));
        Assert.That(Fixtures.RelativeError(host, stored), Is.LessThanOrEqualTo(1e-6));
    }

    [TestCase("cpu")]
    [TestCase("ilgpu-cpu")]
    public void RmsNormMatchesAFloat64Reference(string kind)
    {
        var device = TestDevices.Get(kind);
        const int rows = 37, dim = 16;
        const float eps = 1e-6f;
        var rng = new Random(5);
        var x = Enumerable.Range(0, rows * dim).Select(i => (float)(rng.NextDouble() * 4 - 2) * (1 + i % 3)).ToArray();
        var w = Enumerable.Range(0, dim).Select(_ => (float)(rng.NextDouble() + 0.5)).ToArray();
        var scope = new ParameterScope();
        var norm = new RmsNorm(scope, "norm_q", dim, eps);
        var source = new MemoryWeightSource(new Dictionary<string, (int[], float[])> { ["norm_q.weight"] = ([dim], w) });
        WeightBinder.Bind(device, scope.All, source);
        try
        {
            using var input = device.Upload(x, [rows, dim]);
            using var y = norm.Forward(input);
            var expected = new float[x.Length];
            for (int r = 0; r < rows; r++)
            {
                double ms = 0;
                for (int j = 0; j < dim; j++) ms += (double)x[r * dim + j] * x[r * dim + j];
                double inv = 1 / Math.Sqrt(ms / dim + eps);
                for (int j = 0; j < dim; j++) expected[r * dim + j] = (float)(x[r * dim + j] * inv * w[j]);
            }
            Assert.That(Fixtures.RelativeError(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
        }
        finally { WeightBinder.Release(scope.All); }
    }

    [Test]
    public void RmsQkNormDeclaresThePerHeadWeightsOfEveryBlock()
    {
        var config = EditedConfig("qk_norm", "\"rms_norm\"");
        using var model = ModelLoader.Build(config);
        int layers = config.Int("num_layers", 0), headDim = config.Int("attention_head_dim", 0);
        var declared = model.Parameters.ToDictionary(p => p.Key, p => p.Shape);
        foreach (int i in Enumerable.Range(0, layers))
            foreach (var name in new[] { "norm_q", "norm_k", "norm_added_q", "norm_added_k" })
                Assert.That(declared[$"transformer_blocks.{i}.attn.{name}.weight"], Is.EqualTo(new[] { headDim }), $"block {i} {name}");
        using var plain = ModelLoader.Build(ModelConfig.Load(Path.Combine(ModelFolder, "config.json")));
        Assert.That(model.Parameters.Count - plain.Parameters.Count, Is.EqualTo(4 * layers));
    }

    [TestCase("dual_attention_layers", "[0]", "'dual_attention_layers' = [0]")]
    [TestCase("qk_norm", "\"layer_norm\"", "'qk_norm' = \"layer_norm\"")]
    [TestCase("caption_projection_dim", "48", "'caption_projection_dim' = 48")]
    [TestCase("pos_embed_max_size", "null", "'pos_embed_max_size' = null")]
    public void UnsupportedOrInconsistentConfigIsNamed(string key, string value, string expected)
    {
        var e = Assert.Throws<ModelLoadException>(() => ModelLoader.Build(EditedConfig(key, value)).Dispose())!;
        Assert.That(e.Message, Does.Contain(expected).And.Contain("SD3Transformer2DModel"));
    }

    [Test]
    public void MissingPooledProjectionsAndOversizedGridAreNamed()
    {
        var device = TestDevices.Get("cpu");
        using var model = ModelLoader.LoadDenoiser(device, ModelFolder);
        using var io = SafetensorsFile.Open(Path.Combine(Fixtures.RequireRoot(), "models", Fixture, "io.safetensors"));
        using var x = io.Load(device, "hidden_states");
        using var t = io.Load(device, "timestep");
        using var text = io.Load(device, "encoder_hidden_states");
        using var pooled = io.Load(device, "pooled_projections");
        var e = Assert.Throws<ArgumentException>(() => model.Forward(x, t, encoderHiddenStates: text).Dispose())!;
        Assert.That(e.Message, Does.Contain("pooled_projections"));
        var config = model.Config;
        int tooBig = (config.Int("pos_embed_max_size", 0) + 1) * config.Int("patch_size", 0);
        using var big = device.Zeros(x.Dim(0), x.Dim(1), tooBig, tooBig);
        e = Assert.Throws<ArgumentException>(() => model.Forward(big, t, encoderHiddenStates: text, pooledProjections: pooled).Dispose())!;
        Assert.That(e.Message, Does.Contain("pos_embed_max_size"));
    }
}
