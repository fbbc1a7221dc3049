using System.Globalization;
using System.Text.Json;
using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Tests;

/// <summary>
/// Every module-level op fixture in <c>fixtures/ops</c> whose <c>op</c> this table knows, on every test
/// device: the module is built from the fixture's params (or its recorded constructor call), its
/// weights bound strictly from the <c>w.*</c> tensors, and each output compared at 1e-4 relative.
/// Primitive ops (Conv2d, GroupNorm, ...) are covered by the core tests.
/// </summary>
[TestFixture]
public sealed class ModuleFixtureTests
{
    private const double Tolerance = 1e-4;

    private static readonly Dictionary<string, Action<ModuleCase>> Runners = new()
    {
        ["Attention(4D spatial)"] = SpatialAttention,
        ["Attention"] = TokenAttention,
        ["BasicTransformerBlock"] = TransformerBlock,
        ["AdaLayerNormZero"] = AdaNormZero,
        ["PatchEmbed"] = PatchEmbedding,
        ["Downsample2D"] = Downsample,
        ["Upsample2D"] = Upsample,
        ["FeedForward"] = FeedForwardBlock,
        ["ResnetBlock2D"] = Resnet,
        ["get_2d_sincos_pos_embed"] = SinCos,
        ["TimestepEmbedding"] = TimestepMlp,
    };

    public static IEnumerable<TestCaseData> Cases() =>
        from name in Fixtures.Names("ops")
        let op = OpOf(name)
        where op is not null && Runners.ContainsKey(op)
        from kind in TestDevices.Kinds
        select new TestCaseData(name, kind).SetName($"Module {name} on {kind}");

    private static string? OpOf(string name)
    {
        var json = Fixtures.Json(Path.Combine("ops", name + ".json"));
        return json.TryGetProperty("op", out var op) ? op.GetString() : null;
    }

    [Test]
    public void ModuleFixturesAreDiscovered()
    {
        Fixtures.RequireRoot();
        Assert.That(Cases().Count(), Is.GreaterThanOrEqualTo(Runners.Count), "every known module op should have a fixture");
    }

    [TestCaseSource(nameof(Cases))]
    public void MatchesDiffusers(string name, string kind)
    {
        var device = TestDevices.Get(kind);
        using var c = new ModuleCase(name, device);
        Runners[OpOf(name)!](c);
    }

    private static int P(ModuleCase c, string key) => c.Params.GetProperty(key).GetInt32();

    private static void SpatialAttention(ModuleCase c)
    {
        var attn = new Attention(c.Scope, P(c, "channels"), P(c, "heads"), P(c, "dim_head"), bias: true,
            normGroups: P(c, "norm_num_groups"), eps: c.Params.GetProperty("eps").GetSingle(), residualConnection: true);
        c.Bind();
        c.Check("y", attn.Forward(c.Input("x")), Tolerance);
    }

    private static void TokenAttention(ModuleCase c)
    {
        var cross = c.Params.GetProperty("cross_attention_dim");
        var attn = new Attention(c.Scope, P(c, "query_dim"), P(c, "heads"), P(c, "dim_head"),
            cross.ValueKind == JsonValueKind.Null ? null : cross.GetInt32(), bias: c.Params.GetProperty("qkv_bias").GetBoolean());
        c.Bind();
        c.Check("y", attn.Forward(c.Input("x"), c.Has("context") ? c.Input("context") : null), Tolerance);
    }

    private static void TransformerBlock(ModuleCase c)
    {
        var a = CallArguments.Parse(c.Call, "BasicTransformerBlock");
        var block = new BasicTransformerBlock(c.Scope, a.Int("dim", 0), a.Int("num_attention_heads", 1), a.Int("attention_head_dim", 2),
            a.Named.ContainsKey("cross_attention_dim") ? a.Int("cross_attention_dim", -1) : null, a.String("activation_fn", "geglu"));
        c.Bind();
        var x = c.Input("x");
        var y = c.Device.Allocate(x.ShapeArray());
        c.Device.Copy(x, y);
        block.Forward(y, c.Has("context") ? c.Input("context") : null);
        c.Check("y", y, Tolerance);
    }

    private static void AdaNormZero(ModuleCase c)
    {
        var a = CallArguments.Parse(c.Call, "AdaLayerNormZero");
        var ada = new AdaLayerNormZero(c.Scope, a.Int("embedding_dim", 0), a.Int("num_embeddings", 1));
        c.Bind();
        var t = c.Input("timestep");
        var labels = c.Input("class_labels");
        c.Check("conditioning", ada.Embedding!.Forward(t, labels), Tolerance);
        var r = ada.Forward(c.Input("x"), t, labels);
        c.Check("x_out", r.Normed, Tolerance);
        c.Check("gate_msa", r.GateMsa, Tolerance);
        c.Check("shift_mlp", r.ShiftMlp, Tolerance);
        c.Check("scale_mlp", r.ScaleMlp, Tolerance);
        c.Check("gate_mlp", r.GateMlp, Tolerance);
    }

    private static void PatchEmbedding(ModuleCase c)
    {
        var pe = new PatchEmbed(c.Scope, P(c, "height"), P(c, "width"), P(c, "patch_size"), P(c, "in_channels"), P(c, "embed_dim"));
        c.Bind();
        int gh = P(c, "height") / P(c, "patch_size"), gw = P(c, "width") / P(c, "patch_size");
        var table = SinCosPositionEmbedding.Create(P(c, "embed_dim"), gh, gw, pe.BaseSize);
        c.Check("pos_embed", c.Device.Upload(table, 1, gh * gw, P(c, "embed_dim")), Tolerance);
        c.Check("y", pe.Forward(c.Input("x")), Tolerance);
    }

    private static void Downsample(ModuleCase c)
    {
        var a = CallArguments.Parse(c.Call, "Downsample2D");
        var down = new Downsample2D(c.Scope, P(c, "channels"), P(c, "out_channels"), a.Int("padding", -1, 1));
        c.Bind();
        c.Check("y", down.Forward(c.Input("x")), Tolerance);
    }

    private static void Upsample(ModuleCase c)
    {
        var up = new Upsample2D(c.Scope, P(c, "channels"), P(c, "out_channels"));
        c.Bind();
        c.Check("y", up.Forward(c.Input("x")), Tolerance);
    }

    private static void FeedForwardBlock(ModuleCase c)
    {
        var ff = new FeedForward(c.Scope, P(c, "dim"), c.Params.GetProperty("activation_fn").GetString()!, P(c, "mult"));
        c.Bind();
        c.Check("y", ff.Forward(c.Input("x")), Tolerance);
    }

    private static void Resnet(ModuleCase c)
    {
        var a = CallArguments.Parse(c.Call, "ResnetBlock2D");
        var block = new ResnetBlock2D(c.Scope, a.Int("in_channels", -1), a.Int("out_channels", -1), a.Int("temb_channels", -1),
            a.Int("groups", -1), a.Float("eps", 1e-6f), a.String("time_embedding_norm", "default"), a.Float("output_scale_factor", 1f));
        c.Bind();
        c.Check("y", block.Forward(c.Input("x"), c.Input("temb")), Tolerance);
    }

    private static void SinCos(ModuleCase c)
    {
        foreach (var call in c.Json.GetProperty("calls").EnumerateObject())
        {
            var a = CallArguments.Parse(call.Value.GetString()!, "get_2d_sincos_pos_embed");
            int dim = int.Parse(a.Positional[0], CultureInfo.InvariantCulture);
            var grid = a.Positional[1].Trim('(', ')').Split(',').Select(s => int.Parse(s.Trim(), CultureInfo.InvariantCulture)).ToArray();
            int gh = grid[0], gw = grid.Length > 1 ? grid[1] : grid[0];
            var table = SinCosPositionEmbedding.Create(dim, gh, gw, a.Float("base_size", 16f), a.Float("interpolation_scale", 1f));
            c.Check(call.Name, c.Device.Upload(table, gh * gw, dim), Tolerance);
        }
    }

    private static void TimestepMlp(ModuleCase c)
    {
        var a = CallArguments.Parse(c.Call, "TimestepEmbedding");
        var mlp = new TimestepEmbedding(c.Scope, a.Int("in_channels", 0), a.Int("time_embed_dim", 1));
        c.Bind();
        c.Check("y", mlp.Forward(c.Input("x")), Tolerance);
    }
}
