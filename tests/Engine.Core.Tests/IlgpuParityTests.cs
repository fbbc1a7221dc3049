using Engine.Cpu;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// Every op on the ILGPU device against the CPU device on the same random inputs, at small odd sizes
/// (the CPU accelerator is slow). Tolerance: max|ilgpu - cpu| / max|cpu| at most 1e-5, or 1e-4 for
/// GEMM, convolution and attention (different summation orders). Runs on the ILGPU CPU accelerator
/// (unless ENGINE_TEST_ILGPU=0) and on CUDA where ENGINE_TEST_CUDA=1.
/// </summary>
[TestFixtureSource(nameof(IlgpuKinds))]
public class IlgpuParityTests(string kind)
{
    private const double Tight = 1e-5, Gemm = 1e-4;
    private static readonly CpuDevice Cpu = new();
    /// <summary>The CPU accelerator with 256-thread groups: the GPU-sized launch shapes (GEMM tile 16, attention tile 64).</summary>
    private const string WideCpu = "ilgpu-cpu-256";
    private static readonly Lazy<Device> Wide = new(() => IlgpuDevice.CreateSimulated(warpsPerGroup: 8));

    private Device Target => kind == WideCpu ? Wide.Value : TestDevices.Get(kind);

    public static IEnumerable<string> IlgpuKinds
    {
        get
        {
            foreach (var k in TestDevices.Kinds.Where(k => k != "cpu"))
            {
                yield return k;
                if (k == "ilgpu-cpu") yield return WideCpu;
            }
        }
    }

    [OneTimeSetUp]
    public void Open()
    {
        try { _ = Target; }
        catch (PlatformNotSupportedException e) { Assert.Ignore($"{kind} is not available here: {e.Message}"); }
    }

    private static float[] Random(int count, int seed, float scale = 1f, float offset = 0f)
    {
        var rng = new Random(seed);
        var data = new float[count];
        for (int i = 0; i < count; i++) data[i] = offset + scale * (float)(rng.NextDouble() * 2 - 1);
        return data;
    }

    private static int Count(int[] shape) => (int)Tensor.ShapeLength(shape);

    /// <summary>Runs <paramref name="body"/> on the CPU device and on the device under test; returns both downloads.</summary>
    private (float[] Expected, float[] Actual) Both(Func<Device, Tensor> body)
    {
        float[] Run(Device d)
        {
            using var result = body(d);
            return result.ToArray();
        }
        return (Run(Cpu), Run(Target));
    }

    private static void AssertClose((float[] Expected, float[] Actual) r, double tolerance, string what)
    {
        Assert.That(r.Actual, Has.Length.EqualTo(r.Expected.Length), what);
        double err = Fixtures.RelativeError(r.Actual, r.Expected);
        Assert.That(err, Is.LessThanOrEqualTo(tolerance), $"{what}: relative error {err:E2}");
    }

    private Tensor Up(Device d, float[] data, params int[] shape) => d.Upload(data, shape);

    [TestCase(1, 17, 23, 19, false, false, false, false, Activation.None, 1f)]
    [TestCase(3, 13, 11, 29, true, false, false, true, Activation.SiLU, 1f)]
    [TestCase(2, 9, 21, 15, false, true, true, true, Activation.GeluErf, 0.5f)]
    [TestCase(2, 20, 7, 33, true, true, false, false, Activation.GeluTanh, 1f)]
    [TestCase(3, 5, 6, 40, false, false, true, true, Activation.Relu, -1.5f)]
    [TestCase(2, 45, 70, 21, true, false, false, true, Activation.SiLU, 1f)]
    [TestCase(1, 67, 33, 18, false, true, true, false, Activation.None, 2f)]
    public void MatMul(int batch, int m, int n, int k, bool ta, bool tb, bool broadcastB, bool bias, Activation act, float alpha)
    {
        int[] aShape = ta ? [batch, k, m] : [batch, m, k];
        int[] bShape = tb ? [n, k] : [k, n];
        if (!broadcastB) bShape = [batch, .. bShape];
        var a = Random(Count(aShape), 1);
        var b = Random(Count(bShape), 2);
        var bv = Random(n, 3);
        AssertClose(Both(d =>
        {
            using var ta_ = Up(d, a, aShape);
            using var tb_ = Up(d, b, bShape);
            using var tbias = Up(d, bv, n);
            var o = d.Allocate(batch, m, n);
            d.MatMul(ta_, tb_, o, ta, tb, bias ? tbias : null, act, alpha);
            return o;
        }), Gemm, "MatMul");
    }

    /// <summary>
    /// GEMM and convolution with each register block forced (4 x 4 and 8 x 8 per thread), at sizes
    /// that leave partial block tiles at both 4T and 8T, with transposes, bias, activation and F16
    /// weights. (Unforced, the device picks by problem size: on the CPU accelerator always 8 x 8.)
    /// </summary>
    [TestCase(false)]
    [TestCase(true)]
    public void ProductsWithEachRegisterBlock(bool wide)
    {
        if (Target is not IlgpuDevice ilgpu) { Assert.Ignore("not an ILGPU device"); return; }
        ilgpu.ForcedWideTile = wide;
        try
        {
            MatMul(2, 131, 70, 37, false, true, true, true, Activation.GeluTanh, 1f);
            MatMul(1, 45, 150, 21, true, false, false, false, Activation.None, 0.5f);
            Conv2d(2, 5, 13, 11, 70, 3, 3, 1, 1, true);
            Conv2d(1, 3, 12, 13, 9, 3, 3, 2, 1, false);
            var a = Random(3 * 67 * 29, 20);
            var w = Random(35 * 29, 21);
            var expected = Reference.MatMul(a, w.Select(v => (float)(Half)v).ToArray(), 1, 1, 3 * 67, 35, 29, false, true, null, Activation.None, 1f);
            using var ta = Target.Upload(a, 3 * 67, 29);
            using var tw32 = Target.Upload(w, 35, 29);
            using var tw = Target.Convert(tw32, DType.F16);
            using var o = Target.Allocate(3 * 67, 35);
            Target.MatMul(ta, tw, o, transposeB: true);
            Assert.That(Fixtures.RelativeError(o.ToArray(), expected.Select(v => (float)v).ToArray()), Is.LessThanOrEqualTo(Gemm), "F16 weights");
        }
        finally { ilgpu.ForcedWideTile = null; }
    }

    [Test]
    public void LinearOnSlicedViews()
    {
        var x = Random(4 * 5 * 24, 4);
        var w = Random(19 * 24, 5);
        var b = Random(19, 6);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 4, 5, 24);
            using var tw = Up(d, w, 19, 24);
            using var tb = Up(d, b, 19);
            using var full = d.Zeros(4, 5, 19);
            var o = d.Allocate(2, 5, 19);
            // Slices carry non-zero offsets into their buffers.
            d.Linear(tx.Slice(1, 2), tw, tb, full.Slice(2, 2), Activation.SiLU);
            d.Copy(full.Slice(2, 2), o);
            return o;
        }), Gemm, "Linear on views");
    }

    [TestCase(2, 3, 9, 11, 5, 3, 3, 1, 1, true)]
    [TestCase(1, 4, 10, 10, 6, 3, 3, 2, 1, false)]
    [TestCase(2, 5, 7, 6, 7, 1, 1, 1, 0, true)]
    [TestCase(1, 3, 8, 9, 4, 4, 2, 2, 0, true)]
    [TestCase(1, 2, 12, 13, 37, 3, 3, 1, 1, true)]
    public void Conv2d(int n, int c, int h, int w, int o, int kh, int kw, int stride, int pad, bool bias)
    {
        var x = Random(n * c * h * w, 7);
        var wt = Random(o * c * kh * kw, 8);
        var bv = Random(o, 9);
        int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, n, c, h, w);
            using var tw = Up(d, wt, o, c, kh, kw);
            using var tb = Up(d, bv, o);
            var output = d.Allocate(n, o, ho, wo);
            d.Conv2d(tx, tw, bias ? tb : null, output, stride, pad);
            return output;
        }), Gemm, "Conv2d");
    }

    [TestCase(2, 12, 5, 7, 4, true, true)]
    [TestCase(1, 8, 3, 3, 8, false, false)]
    [TestCase(2, 6, 11, 1, 3, true, false)]
    public void GroupNorm(int n, int c, int h, int w, int groups, bool affine, bool silu)
    {
        var x = Random(n * c * h * w, 10, 2f, 3f);
        var g = Random(c, 11, 1f, 1f);
        var b = Random(c, 12);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, n, c, h, w);
            using var tg = Up(d, g, c);
            using var tb = Up(d, b, c);
            var o = d.Allocate(n, c, h, w);
            d.GroupNorm(tx, affine ? tg : null, affine ? tb : null, o, groups, 1e-5f, silu);
            return o;
        }), Tight, "GroupNorm");
    }

    /// <summary>
    /// The split GroupNorm (partial statistics per chunk, then combine and apply), forced to split each
    /// group into 2-64 blocks, including more blocks than a group has values (empty chunks) and chunk
    /// sizes that do not divide the group.
    /// </summary>
    [TestCase(2, 12, 5, 7, 4, 2, true, true)]
    [TestCase(1, 8, 9, 9, 2, 7, false, false)]
    [TestCase(2, 6, 11, 1, 3, 64, true, false)]
    [TestCase(1, 32, 16, 16, 32, 3, true, true)]
    public void GroupNormSplitOverBlocks(int n, int c, int h, int w, int groups, int splits, bool affine, bool silu)
    {
        if (Target is not IlgpuDevice ilgpu) { Assert.Ignore("not an ILGPU device"); return; }
        ilgpu.ForcedGroupNormSplits = splits;
        try { GroupNorm(n, c, h, w, groups, affine, silu); }
        finally { ilgpu.ForcedGroupNormSplits = null; }
    }

    [TestCase(true)]
    [TestCase(false)]
    public void LayerNorm(bool affine)
    {
        var x = Random(2 * 5 * 37, 13, 3f, -1f);
        var g = Random(37, 14, 1f, 1f);
        var b = Random(37, 15);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 2, 5, 37);
            using var tg = Up(d, g, 37);
            using var tb = Up(d, b, 37);
            var o = d.Allocate(2, 5, 37);
            d.LayerNorm(tx, affine ? tg : null, affine ? tb : null, o, 1e-6f);
            return o;
        }), Tight, "LayerNorm");
    }

    /// <summary>
    /// Attention at head widths on both sides of the register-tiled kernel's limit (d &lt;= 64 runs it on
    /// 256-thread groups, wider heads and 64-thread groups the one-dot-per-thread kernel): several
    /// 64-row query blocks and 32-key blocks with partial last blocks, fewer keys than one block, and
    /// a query scale that spreads the scores over +-40 so the online-softmax rescaling matters.
    /// </summary>
    [TestCase(8, 3, 37, 29, 1f)]
    [TestCase(40, 2, 33, 33, 1f)]
    [TestCase(64, 2, 70, 67, 1f)]
    [TestCase(64, 1, 129, 97, 40f)]
    [TestCase(17, 3, 130, 5, 1f)]
    [TestCase(1, 1, 3, 1, 1f)]
    [TestCase(80, 2, 19, 45, 1f)]
    [TestCase(160, 1, 21, 35, 1f)]
    public void Attention(int d, int heads, int lq, int lk, float spread)
    {
        const int batch = 2;
        int width = d * heads;
        var q = Random(batch * lq * width, 16, spread);
        var k = Random(batch * lk * width, 17);
        var v = Random(batch * lk * width, 18);
        float scale = 1f / MathF.Sqrt(d);
        AssertClose(Both(dev =>
        {
            using var tq = Up(dev, q, batch, lq, width);
            using var tk = Up(dev, k, batch, lk, width);
            using var tv = Up(dev, v, batch, lk, width);
            var o = dev.Allocate(batch, lq, width);
            dev.Attention(tq, tk, tv, o, heads, scale);
            return o;
        }), Gemm, $"Attention d={d}");
    }

    [Test]
    public void Softmax()
    {
        var x = Random(2 * 5 * 31, 19, 6f);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 2, 5, 31);
            var o = d.Allocate(2, 5, 31);
            d.Softmax(tx, o);
            return o;
        }), Tight, "Softmax");
    }

    [TestCase(Activation.None)]
    [TestCase(Activation.SiLU)]
    [TestCase(Activation.GeluErf)]
    [TestCase(Activation.GeluTanh)]
    [TestCase(Activation.Relu)]
    public void Activate(Activation act)
    {
        var x = Random(997, 20, 6f);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 997);
            var o = d.Allocate(997);
            d.Activate(tx, o, act);
            return o;
        }), Tight, $"Activate {act}");
    }

    [Test]
    public void Geglu()
    {
        var x = Random(3 * 5 * 26, 21, 3f);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 3, 5, 26);
            var o = d.Allocate(3, 5, 13);
            d.Geglu(tx, o);
            return o;
        }), Tight, "Geglu");
    }

    private static IEnumerable<TestCaseData> BinaryCases()
    {
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            yield return new TestCaseData(op, new[] { 3, 7, 5 }, new[] { 3, 7, 5 });
            yield return new TestCaseData(op, new[] { 2, 3, 4, 5 }, new[] { 3, 1, 5 });
            yield return new TestCaseData(op, new[] { 2, 1, 5 }, new[] { 4, 1 });
        }
        yield return new TestCaseData(BinaryOp.Mul, new[] { 2, 1, 3, 1, 2, 3 }, new[] { 2, 1, 4, 1, 1 });
    }

    [TestCaseSource(nameof(BinaryCases))]
    public void Binary(BinaryOp op, int[] aShape, int[] bShape)
    {
        var a = Random(Count(aShape), 22);
        // Divisors kept away from zero.
        var b = Random(Count(bShape), 23, 1f, 0f).Select(v => v < 0 ? v - 0.5f : v + 0.5f).ToArray();
        var shape = Device.BroadcastShape(aShape, bShape);
        AssertClose(Both(d =>
        {
            using var ta = Up(d, a, aShape);
            using var tb = Up(d, b, bShape);
            var o = d.Allocate(shape);
            d.Binary(op, ta, tb, o);
            return o;
        }), Tight, $"{op} {Tensor.ShapeString(aShape)} {Tensor.ShapeString(bShape)}");
    }

    [TestCase(1)]
    [TestCase(3)]
    [TestCase(8)]
    public void LinearCombinationAliasingOutput(int terms)
    {
        const int n = 1031;
        var inputs = Enumerable.Range(0, terms).Select(i => Random(n, 30 + i)).ToArray();
        var coeffs = Enumerable.Range(0, terms).Select(i => 0.5f - 0.3f * i).ToArray();
        AssertClose(Both(d =>
        {
            var tensors = inputs.Select(x => Up(d, x, n)).ToArray();
            // Output aliases the first input, as a sampler update x = a x + b eps does.
            d.LinearCombination(tensors[0], tensors, coeffs);
            foreach (var t in tensors.Skip(1)) t.Dispose();
            return tensors[0];
        }), Tight, $"LinearCombination {terms}");
    }

    [Test]
    public void AffineAndFill()
    {
        var x = Random(513, 40, 4f);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 513);
            var o = d.Allocate(2, 513);
            d.Fill(o, 0.75f);
            d.Affine(tx, o.Slice(1, 1), -1.25f, 0.5f);
            return o;
        }), Tight, "Affine/Fill");
    }

    [TestCase(DType.F16, DType.F32)]
    [TestCase(DType.BF16, DType.F32)]
    [TestCase(DType.F16, DType.BF16)]
    [TestCase(DType.BF16, DType.F16)]
    [TestCase(DType.F16, DType.F16)]
    [TestCase(DType.F32, DType.F32)]
    public void CopyConverts(DType first, DType second)
    {
        var x = Random(301, 41, 300f).Append(float.NaN).Append(1e-6f).Append(65504f).ToArray();
        int n = x.Length;
        var (expected, actual) = Both(d =>
        {
            using var tx = Up(d, x, n);
            using var a = d.Allocate(first, n);
            using var b = d.Allocate(second, n);
            d.Copy(tx, a);
            d.Copy(a, b);
            var o = d.Allocate(n);
            d.Copy(b, o);
            return o;
        });
        Assert.That(actual, Is.EqualTo(expected), $"{first} -> {second} round trip");
    }

    [Test]
    public void CopyHalfUploadAndSlices()
    {
        var bits = Random(64, 42, 10f).Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray();
        var bytes = bits.SelectMany(BitConverter.GetBytes).ToArray();
        var (expected, actual) = Both(d =>
        {
            using var h = d.UploadRaw(bytes, DType.F16, 8, 8);
            var o = d.Zeros(8, 8);
            d.Copy(h.Slice(2, 3), o.Slice(4, 3));
            return o;
        });
        Assert.That(actual, Is.EqualTo(expected));
    }

    [TestCase(32, false, 1f, 1f)]
    [TestCase(33, true, 0f, 1f)]
    [TestCase(64, true, 1f, 1000f)]
    public void TimestepEmbedding(int dim, bool flip, float shift, float scale)
    {
        float[] t = [0f, 1f, 250.5f, 999f, 17f];
        AssertClose(Both(d =>
        {
            using var tt = Up(d, t, t.Length);
            var o = d.Allocate(t.Length, dim);
            d.TimestepEmbedding(tt, o, flip, shift, scale);
            return o;
        }), Tight, "TimestepEmbedding");
    }

    [Test]
    public void ModulateAndGatedAdd()
    {
        var x = Random(2 * 7 * 12, 43);
        var shift = Random(2 * 12, 44);
        var scale = Random(2 * 12, 45);
        var gate = Random(2 * 12, 46);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 2, 7, 12);
            using var tsh = Up(d, shift, 2, 12);
            using var tsc = Up(d, scale, 2, 12);
            using var tg = Up(d, gate, 2, 12);
            var o = d.Allocate(2, 7, 12);
            d.Modulate(tx, tsh, tsc, o);
            d.GatedAdd(o, tx, tg, o);
            return o;
        }), Tight, "Modulate/GatedAdd");
    }

    [Test]
    public void UpsampleConcatTranspose()
    {
        var x = Random(2 * 3 * 5 * 4, 47);
        var y = Random(2 * 2 * 10 * 8, 48);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 2, 3, 5, 4);
            using var ty = Up(d, y, 2, 2, 10, 8);
            using var up = d.Allocate(2, 3, 10, 8);
            d.UpsampleNearest2x(tx, up);
            using var cat = d.Allocate(2, 5, 10, 8);
            d.ConcatChannels(up, ty, cat);
            var o = d.Allocate(2, 80, 5);
            d.Transpose(cat.Reshape(2, 5, 80), o);
            return o;
        }), 0, "Upsample/Concat/Transpose");
    }

    [Test]
    public void PatchifyRoundTrip()
    {
        var x = Random(2 * 3 * 8 * 6, 49);
        AssertClose(Both(d =>
        {
            using var tx = Up(d, x, 2, 3, 8, 6);
            using var tokens = d.Allocate(2, 12, 12);
            d.Patchify(tx, tokens, 2);
            using var back = d.Allocate(2, 3, 8, 6);
            d.Unpatchify(tokens, back, 2);
            var o = d.Allocate(2 * 12 * 12 + 2 * 3 * 8 * 6);
            d.Copy(tokens, o.Reshape(-1).Slice(0, 288).Reshape(2, 12, 12));
            d.Copy(back, o.Reshape(-1).Slice(288, 288).Reshape(2, 3, 8, 6));
            return o;
        }), 0, "Patchify/Unpatchify");
    }

    [Test]
    public void RandomNormalMatchesCpuNoise()
    {
        var (expected, actual) = Both(d =>
        {
            var o = d.Allocate(3, 101);
            d.RandomNormal(o, 0x1234_5678_9ABC_DEF0UL, 5, 7);
            return o;
        });
        if (kind.StartsWith("ilgpu-cpu", StringComparison.Ordinal)) Assert.That(actual, Is.EqualTo(expected), "identical noise");
        else Assert.That(Fixtures.RelativeError(actual, expected), Is.LessThanOrEqualTo(Tight));
    }

    [Test]
    public void LaunchShapeFollowsTheAccelerator()
    {
        if (Target is not IlgpuDevice ilgpu) { Assert.Ignore("not an ILGPU device"); return; }
        var (tile, reduction, attention) = ilgpu.LaunchShape;
        int maxGroup = ilgpu.Accelerator.MaxNumThreadsPerGroup;
        Assert.That(tile * tile, Is.LessThanOrEqualTo(maxGroup));
        Assert.That(reduction, Is.LessThanOrEqualTo(maxGroup));
        Assert.That(attention, Is.LessThanOrEqualTo(maxGroup));
        if (kind == "ilgpu-cpu") Assert.That((tile, reduction, attention), Is.EqualTo((8, 64, 64)));
        if (kind == WideCpu) Assert.That((tile, reduction, attention), Is.EqualTo((16, 256, 128)));
    }

    [Test]
    public void SamplerLoopStaysOnDevice()
    {
        const int n = 2 * 4 * 7 * 7;
        using var x = Target.Upload(Random(n, 50), 2, 4, 7, 7);
        using var eps = Target.Allocate(2, 4, 7, 7);
        using var denoised = Target.Upload(Random(n, 51), 2, 4, 7, 7);
        void Step(int i)
        {
            Target.RandomNormal(eps, 42, 0, i);
            Target.LinearCombination(x, [x, denoised, eps], [0.9f, 0.1f, 0.05f]);
        }
        Step(0); // warm-up: kernels compile, buffers exist
        Target.Synchronize();
        long downloads = Target.Transfers.Downloads, uploads = Target.Transfers.Uploads, allocations = Target.Transfers.Allocations;
        for (int i = 1; i <= 20; i++) Step(i);
        Target.Synchronize();
        Assert.That(Target.Transfers.Downloads - downloads, Is.Zero, "downloads");
        Assert.That(Target.Transfers.Uploads - uploads, Is.Zero, "uploads");
        Assert.That(Target.Transfers.Allocations - allocations, Is.Zero, "allocations");
        Assert.That(x.ToArray().All(float.IsFinite), Is.True);
    }
}
