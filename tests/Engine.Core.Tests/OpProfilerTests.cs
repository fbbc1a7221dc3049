using System.Text.Json;
using Engine.Core.Profiling;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>The per-op profiler: exact call counts by family and shape, exclusive times, shares, flops, JSON, and nothing recorded when detached.</summary>
public class OpProfilerTests
{
    // One pass of a small block: two 3x3 convs (the strided one with bf16 weights, which the CPU's direct kernel
    // reads widened per call; f16 ones it widens while packing, with no nested convert), a 1x1 conv, GroupNorm+SiLU, an f16 Linear (its weight packed directly), an f32 Linear,
    // self and cross attention, an upsampling and an add.
    private static void RunBlock(Device d, Tensor x16, Tensor w3, Tensor w1, Tensor wLin16, Tensor wLin, Tensor ctx, Tensor w316)
    {
        using var a = d.Allocate(1, 8, 8, 8);
        d.Conv2d(x16, w3, null, a, padding: 1);
        using var s2 = d.Allocate(1, 8, 4, 4);
        d.Conv2d(a, w316, null, s2, stride: 2, padding: 1);
        using var b = d.Allocate(1, 8, 8, 8);
        d.Conv2d(a, w1, null, b);
        using var normed = d.Allocate(1, 8, 8, 8);
        d.GroupNorm(b, null, null, normed, 2, 1e-5f, silu: true);
        var tokens = normed.Reshape(1, 8, 64);
        using var q = d.Allocate(1, 8, 16);
        d.Linear(tokens, wLin16, null, q);
        using var kv = d.Allocate(1, 3, 16);
        d.Linear(ctx, wLin, null, kv);
        using var selfOut = d.Allocate(1, 8, 16);
        d.Attention(q, q, q, selfOut, heads: 2, scale: 0.25f);
        using var crossOut = d.Allocate(1, 8, 16);
        d.Attention(q, kv, kv, crossOut, heads: 2, scale: 0.25f);
        using var up = d.Allocate(1, 8, 8, 8);
        d.UpsampleNearest2x(s2, up);
        d.Add(selfOut, crossOut, selfOut);
    }

    /// <summary>
    /// Whether the CPU device widens the strided bf16 conv's weight per call, a nested convert op: its direct
    /// kernels do; CPUs without AVX2/FMA run that conv as GEMM, which packs the bf16 weight as stored.
    /// </summary>
    private static bool WidensStridedBf16Conv(Device d) => ((CpuDevice)d).ChooseConv(8 * 8, 8, 3, 3, 2, 1, 8) != ConvAlgorithm.Gemm;

    private static (Device Device, Tensor[] Inputs) Setup()
    {
        var d = TestDevices.Get("cpu");
        var rng = new Random(3);
        var x = d.Upload(Reference.Random(rng, 8 * 64), 1, 8, 8, 8);
        var w3 = d.Upload(Reference.Random(rng, 8 * 8 * 9), 8, 8, 3, 3);
        var w1 = d.Upload(Reference.Random(rng, 8 * 8), 8, 8, 1, 1);
        using var lin32 = d.Upload(Reference.Random(rng, 16 * 64), 16, 64);
        var lin16 = d.Convert(lin32, DType.F16);
        var lin = d.Upload(Reference.Random(rng, 16 * 12), 16, 12);
        var ctx = d.Upload(Reference.Random(rng, 3 * 12), 1, 3, 12);
        var w316 = d.Convert(w3, DType.BF16);
        return (d, [x, w3, w1, lin16, lin, ctx, w316]);
    }

    [Test]
    public void CountsEveryOpOnceByFamilyAndShape()
    {
        var (d, t) = Setup();
        var profiler = new OpProfiler();
        d.Profiler = profiler;
        try { RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]); RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]); }
        finally { d.Profiler = null; foreach (var x in t) x.Dispose(); }
        var p = profiler.Snapshot();
        var families = p.Families.ToDictionary(r => r.Family, r => r.Calls);
        // The MatMul inside each Linear is part of the Linear; the per-call widening of the bf16 conv weight is its own row.
        bool widens = WidensStridedBf16Conv(d);
        var expected = new Dictionary<string, long>
        {
            ["conv3x3"] = 4, ["conv1x1"] = 2, ["groupnorm"] = 2, ["linear"] = 4,
            ["attention self"] = 2, ["attention cross"] = 2, ["upsample"] = 2, ["pointwise"] = 2,
        };
        if (widens) expected["convert"] = 2;
        Assert.That(families, Is.EquivalentTo(expected));
        var shapes = p.Shapes.ToDictionary(r => (r.Family, r.Shape), r => r);
        Assert.That(shapes[("conv3x3", "8x8 8->8 n1")].Calls, Is.EqualTo(2));
        Assert.That(shapes[("conv3x3", "8x8 8->8 s2 n1 wbf16")].Calls, Is.EqualTo(2));
        Assert.That(shapes[("conv3x3", "8x8 8->8 n1")].Flops, Is.EqualTo(2 * 2.0 * 8 * 64 * 8 * 9));
        Assert.That(shapes[("linear", "8x64->16 wf16")].Flops, Is.EqualTo(2 * 2.0 * 8 * 64 * 16));
        Assert.That(shapes[("attention self", "L8 Lk8 d8 h2 b1")].Flops, Is.EqualTo(2 * 4.0 * 8 * 8 * 16));
        Assert.That(shapes[("attention cross", "L8 Lk3 d8 h2 b1")].Calls, Is.EqualTo(2));
        if (widens) Assert.That(shapes[("convert", "bf16->f32 8x8x3x3")].Calls, Is.EqualTo(2));
        Assert.That(shapes[("groupnorm", "8x64 g2 +silu n1")].Calls, Is.EqualTo(2));
        Assert.That(shapes[("pointwise", "Add 1x8x16")].Calls, Is.EqualTo(2));
        Assert.That(p.Shapes.Sum(r => r.Calls), Is.EqualTo(widens ? 22 : 20));
        Assert.That(p.Shapes.All(r => r.WallSeconds > 0 && r.CpuSeconds >= 0), "every op takes measurable wall time");
        Assert.That(p.Shapes.Sum(r => p.Share(r)), Is.EqualTo(100).Within(1e-9));
        Assert.That(p.Families.Sum(r => p.Share(r)), Is.EqualTo(100).Within(1e-9));
        Assert.That(p.TotalWallSeconds, Is.EqualTo(p.Families.Sum(r => r.WallSeconds)).Within(1e-12));
        Assert.That(shapes[("linear", "8x64->16 wf16")].GflopsPerSecond, Is.GreaterThan(0));
        Assert.That(shapes[("upsample", "8 4x4->2x n1")].GflopsPerSecond, Is.Null, "no rate for data movement");
    }

    [Test]
    public void DetachedOrResetRecordsNothing()
    {
        var (d, t) = Setup();
        var profiler = new OpProfiler();
        try
        {
            RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
            Assert.That(profiler.Snapshot().Shapes, Is.Empty);
            d.Profiler = profiler;
            RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
            Assert.That(profiler.Snapshot().Shapes.Sum(r => r.Calls), Is.EqualTo(WidensStridedBf16Conv(d) ? 11 : 10));
            profiler.Reset();
            Assert.That(profiler.Snapshot().Shapes, Is.Empty);
            d.Profiler = null;
            RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]);
            Assert.That(profiler.Snapshot().Shapes, Is.Empty);
        }
        finally { d.Profiler = null; foreach (var x in t) x.Dispose(); }
    }

    [Test]
    public void ExclusiveTimesLeaveNestedOpsOutOfTheOuterOp()
    {
        var shared = (CpuDevice)TestDevices.Get("cpu");
        // The direct kernels and Winograd widen a bf16 weight inside the convolution; CPUs without AVX2/FMA route
        // this shape to GEMM (no nested op), so there the test forces Winograd, which runs on any CPU.
        using var own = shared.ChooseConv(8 * 8, 64, 3, 3, 1, 1, 64) == ConvAlgorithm.Gemm ? new CpuDevice(2) { ConvAlgorithm = ConvAlgorithm.Winograd } : null;
        var d = own ?? shared;
        var profiler = new OpProfiler();
        using var w32 = d.Upload(Reference.Random(new Random(1), 64 * 64 * 9), 64, 64, 3, 3);
        using var w16 = d.Convert(w32, DType.BF16);
        using var x = d.Upload(Reference.Random(new Random(2), 64 * 8 * 8), 1, 64, 8, 8);
        using var y = d.Allocate(1, 64, 8, 8);
        d.Profiler = profiler;
        try { d.Conv2d(x, w16, null, y, padding: 1); }
        finally { d.Profiler = null; }
        var p = profiler.Snapshot();
        // The convert op nests inside the convolution; the conv3x3 row holds only the convolution itself.
        var convert = p.Families.Single(r => r.Family == "convert");
        var conv = p.Families.Single(r => r.Family == "conv3x3");
        Assert.That(convert.Calls, Is.EqualTo(1));
        Assert.That(conv.Calls, Is.EqualTo(1));
        Assert.That(p.Families.Select(r => r.Family), Is.EquivalentTo(new[] { "convert", "conv3x3" }));
        Assert.That(convert.WallSeconds + conv.WallSeconds, Is.EqualTo(p.TotalWallSeconds).Within(1e-12));
    }

    [Test]
    public void TableAndJsonCarryTheRows()
    {
        var (d, t) = Setup();
        var profiler = new OpProfiler();
        d.Profiler = profiler;
        try { RunBlock(d, t[0], t[1], t[2], t[3], t[4], t[5], t[6]); }
        finally { d.Profiler = null; foreach (var x in t) x.Dispose(); }
        var p = profiler.Snapshot();
        string table = p.Format(topShapes: 3);
        Assert.That(table, Does.Contain("conv3x3").And.Contain("attention cross").And.Contain("top 3 of"));
        using var json = JsonDocument.Parse(p.ToJson(new Dictionary<string, string> { ["model"] = "block" }));
        var root = json.RootElement;
        Assert.That(root.GetProperty("context").GetProperty("model").GetString(), Is.EqualTo("block"));
        Assert.That(root.GetProperty("shapes").GetArrayLength(), Is.EqualTo(p.Shapes.Count));
        double shares = root.GetProperty("families").EnumerateArray().Sum(f => f.GetProperty("share_percent").GetDouble());
        Assert.That(shares, Is.EqualTo(100).Within(1e-9));
        long calls = root.GetProperty("families").EnumerateArray().Sum(f => f.GetProperty("calls").GetInt64());
        Assert.That(calls, Is.EqualTo(WidensStridedBf16Conv(d) ? 11 : 10));
    }
}
