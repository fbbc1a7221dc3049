using System.Text.Json;
using Engine.Core.Safetensors;

namespace Engine.Core.Tests;

/// <summary>
/// Every primitive-op golden fixture in <c>ops/</c>, discovered from the files and dispatched by the
/// fixture's <c>op</c> field to a runner that reads shapes and parameters from the JSON. Module-level
/// fixtures (blocks built from several ops) have no runner here and are not listed.
/// </summary>
public class OpFixtureTests
{
    private const double Tolerance = 1e-4;

    /// <summary>A runner executes one fixture on a device and asserts its outputs.</summary>
    private delegate void Runner(Device device, JsonElement json, SafetensorsFile file);

    private static readonly Dictionary<string, Runner> Runners = new()
    {
        ["Linear"] = RunLinear,
        ["Conv2d"] = RunConv2d,
        ["GroupNorm"] = RunGroupNorm,
        ["LayerNorm"] = RunLayerNorm,
        ["get_timestep_embedding"] = RunTimestepEmbedding,
        ["Attention"] = RunAttention,
    };

    /// <summary>(device kind, fixture name) for every fixture whose op has a runner.</summary>
    public static IEnumerable<TestCaseData> Cases()
    {
        var names = Fixtures.Names("ops").Where(n => Runners.ContainsKey(OpOf(n))).ToList();
        foreach (var kind in TestDevices.Kinds)
        {
            // Without fixtures, one case per device reports the skip instead of silently running nothing.
            if (names.Count == 0) { yield return new TestCaseData(kind, "").SetName($"OpFixture({kind}, fixtures absent)"); continue; }
            foreach (var name in names) yield return new TestCaseData(kind, name).SetName($"OpFixture({kind}, {name})");
        }
    }

    private static string OpOf(string name) =>
        Fixtures.Json($"ops/{name}.json").TryGetProperty("op", out var op) ? op.GetString() ?? "" : "";

    [TestCaseSource(nameof(Cases))]
    public void OpMatchesFixture(string kind, string name)
    {
        Fixtures.RequireRoot();
        var json = Fixtures.Json($"ops/{name}.json");
        using var file = Fixtures.Tensors($"ops/{name}.safetensors");
        Runners[json.GetProperty("op").GetString()!](TestDevices.Get(kind), json, file);
    }

    private static void AssertClose(Device device, Tensor actual, SafetensorsFile file, string expectedName, string context)
    {
        Assert.That(actual.ShapeArray(), Is.EqualTo(file.Info(expectedName).Shape), $"{context}: shape of {expectedName}");
        double err = Fixtures.RelativeError(device.Download(actual), file.ReadFloats(expectedName));
        Assert.That(err, Is.LessThanOrEqualTo(Tolerance), $"{context}: relative error of {expectedName}");
    }

    private static Tensor? LoadOptional(Device device, SafetensorsFile file, string name) =>
        file.Contains(name) ? file.Load(device, name) : null;

    private static void RunLinear(Device device, JsonElement json, SafetensorsFile file)
    {
        using var w = file.Load(device, "w.weight");
        using var b = LoadOptional(device, file, "w.bias");
        Assert.That(w.Dim(0), Is.EqualTo(json.GetProperty("params").GetProperty("out").GetInt32()));
        Assert.That(w.Dim(1), Is.EqualTo(json.GetProperty("params").GetProperty("in").GetInt32()));
        // Every (input, output) pair: x -> y, x2d -> y2d, ...
        foreach (var input in file.Tensors.Keys.Where(k => k.StartsWith('x')))
        {
            string output = "y" + input[1..];
            using var x = file.Load(device, input);
            using var y = device.Allocate(file.Info(output).Shape);
            device.Linear(x, w, b, y);
            AssertClose(device, y, file, output, $"Linear({input})");
        }
    }

    private static void RunConv2d(Device device, JsonElement json, SafetensorsFile file)
    {
        var p = json.GetProperty("params");
        int stride = p.GetProperty("stride").GetInt32(), padding = p.GetProperty("padding").GetInt32();
        using var x = file.Load(device, "x");
        using var w = file.Load(device, "w.weight");
        using var b = p.GetProperty("bias").GetBoolean() ? file.Load(device, "w.bias") : null;
        Assert.That(w.Dim(2), Is.EqualTo(p.GetProperty("kernel").GetInt32()), "kernel size");
        using var y = device.Allocate(file.Info("y").Shape);
        device.Conv2d(x, w, b, y, stride, padding);
        AssertClose(device, y, file, "y", $"Conv2d(stride {stride}, padding {padding})");
    }

    private static void RunGroupNorm(Device device, JsonElement json, SafetensorsFile file)
    {
        var p = json.GetProperty("params");
        int groups = p.GetProperty("num_groups").GetInt32();
        float eps = p.GetProperty("eps").GetSingle();
        using var x = file.Load(device, "x");
        Assert.That(x.Dim(1), Is.EqualTo(p.GetProperty("num_channels").GetInt32()));
        using var gamma = LoadOptional(device, file, "w.weight");
        using var beta = LoadOptional(device, file, "w.bias");
        using var y = device.Allocate(x.ShapeArray());
        device.GroupNorm(x, gamma, beta, y, groups, eps);
        AssertClose(device, y, file, "y", $"GroupNorm({groups}, {eps})");
        device.GroupNorm(x, gamma, beta, y, groups, eps, silu: true);
        AssertClose(device, y, file, "y_silu", $"GroupNorm+SiLU({groups}, {eps})");
    }

    private static void RunLayerNorm(Device device, JsonElement json, SafetensorsFile file)
    {
        var p = json.GetProperty("params");
        bool affine = p.GetProperty("elementwise_affine").GetBoolean();
        float eps = p.GetProperty("eps").GetSingle();
        using var x = file.Load(device, "x");
        Assert.That(x.Dim(-1), Is.EqualTo(p.GetProperty("dim").GetInt32()));
        using var gamma = affine ? file.Load(device, "w.weight") : null;
        using var beta = affine ? file.Load(device, "w.bias") : null;
        using var y = device.Allocate(x.ShapeArray());
        device.LayerNorm(x, gamma, beta, y, eps);
        AssertClose(device, y, file, "y", $"LayerNorm(affine {affine}, {eps})");
    }

    private static void RunTimestepEmbedding(Device device, JsonElement json, SafetensorsFile file)
    {
        using var t = file.Load(device, "timesteps");
        var calls = json.GetProperty("calls").EnumerateObject().ToList();
        Assert.That(calls, Is.Not.Empty, "the fixture lists its calls");
        foreach (var call in calls)
        {
            // The call text is authoritative: get_timestep_embedding(timesteps, dim, flip_sin_to_cos=..., downscale_freq_shift=...).
            var text = call.Value.GetString()!;
            var args = text[(text.IndexOf('(') + 1)..text.LastIndexOf(')')].Split(',').Select(a => a.Trim()).ToList();
            int dim = int.Parse(args[1]);
            var named = args.Skip(2).Select(a => a.Split('=')).ToDictionary(kv => kv[0].Trim(), kv => kv[1].Trim());
            bool flip = named["flip_sin_to_cos"] == "True";
            float shift = float.Parse(named["downscale_freq_shift"], System.Globalization.CultureInfo.InvariantCulture);
            using var y = device.Allocate((int)t.Length, dim);
            device.TimestepEmbedding(t, y, flip, shift);
            AssertClose(device, y, file, call.Name, text);
        }
    }

    /// <summary>diffusers Attention: q/k/v Linear projections, fused attention, to_out.0 Linear.</summary>
    private static void RunAttention(Device device, JsonElement json, SafetensorsFile file)
    {
        var p = json.GetProperty("params");
        int heads = p.GetProperty("heads").GetInt32(), dimHead = p.GetProperty("dim_head").GetInt32();
        int inner = heads * dimHead;
        using var x = file.Load(device, "x");
        using var context = file.Contains("context") ? file.Load(device, "context") : null;
        var kvSource = context ?? x;
        int batch = x.Dim(0), lq = x.Dim(1), lk = kvSource.Dim(1);
        Assert.That(lq, Is.EqualTo(p.GetProperty("q_len").GetInt32()));
        Assert.That(lk, Is.EqualTo(p.GetProperty("kv_len").GetInt32()));

        using var q = device.Allocate(batch, lq, inner);
        using var k = device.Allocate(batch, lk, inner);
        using var v = device.Allocate(batch, lk, inner);
        Project(device, file, "to_q", x, q);
        Project(device, file, "to_k", kvSource, k);
        Project(device, file, "to_v", kvSource, v);
        using var attended = device.Allocate(batch, lq, inner);
        device.Attention(q, k, v, attended, heads, 1f / MathF.Sqrt(dimHead));
        using var y = device.Allocate(file.Info("y").Shape);
        Project(device, file, "to_out.0", attended, y);
        AssertClose(device, y, file, "y", $"Attention({heads} heads x {dimHead}, Lq {lq}, Lk {lk})");
    }

    private static void Project(Device device, SafetensorsFile file, string module, Tensor input, Tensor output)
    {
        using var w = file.Load(device, $"w.{module}.weight");
        using var b = LoadOptional(device, file, $"w.{module}.bias");
        device.Linear(input, w, b, output);
    }
}
