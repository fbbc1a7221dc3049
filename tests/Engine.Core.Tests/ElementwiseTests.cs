namespace Engine.Core.Tests;

/// <summary>Element-wise and layout ops against naive code.</summary>
public class ElementwiseTests
{
    private const double Tolerance = 1e-6;

    private static double[] ToDouble(float[] x) => x.Select(v => (double)v).ToArray();

    // Pairs of shapes that broadcast (NumPy rules), including rank differences and size-1 dims on both sides;
    // the last three are per-row scalars over >= 16 elements (the CPU's vectorised path, either side) and
    // one that is not (broadcast over a leading dimension too).
    private static readonly int[][][] BroadcastCases =
    [
        [[2, 3, 5], [2, 3, 5]], [[2, 3, 5], [5]], [[2, 3, 5], [3, 1]], [[2, 1, 5], [1, 4, 1]], [[7], [3, 1]], [[1], [2, 3]],
        [[2, 3, 4, 5], [2, 3, 1, 1]], [[2, 3, 1, 1], [2, 3, 4, 5]], [[2, 3, 17], [1, 3, 1]],
    ];

    [Test]
    public void BinaryBroadcastMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Range(0, 8)] int shapes, [Values] BinaryOp op)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(shapes);
        int[] sa = BroadcastCases[shapes][0], sb = BroadcastCases[shapes][1];
        var outShape = Device.BroadcastShape(sa, sb);
        var a = Reference.Random(rng, (int)Tensor.ShapeLength(sa));
        // Keep divisors away from zero.
        var b = Reference.Random(rng, (int)Tensor.ShapeLength(sb)).Select(v => op == BinaryOp.Div ? v + MathF.CopySign(1f, v) : v).ToArray();
        using var ta = device.Upload(a, sa);
        using var tb = device.Upload(b, sb);
        using var y = device.Allocate(outShape);
        device.Binary(op, ta, tb, y);
        var expected = new double[Tensor.ShapeLength(outShape)];
        int rank = outShape.Length;
        var coord = new int[rank];
        for (int i = 0; i < expected.Length; i++)
        {
            int rem = i;
            for (int dim = rank - 1; dim >= 0; dim--) { coord[dim] = rem % outShape[dim]; rem /= outShape[dim]; }
            double va = a[Index(sa, coord)], vb = b[Index(sb, coord)];
            expected[i] = op switch { BinaryOp.Add => va + vb, BinaryOp.Sub => va - vb, BinaryOp.Mul => va * vb, _ => va / vb };
        }
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(Tolerance), $"{op} {Tensor.ShapeString(sa)} {Tensor.ShapeString(sb)}");
    }

    private static int Index(int[] shape, int[] outCoord)
    {
        int idx = 0, offset = outCoord.Length - shape.Length;
        for (int d = 0; d < shape.Length; d++) idx = idx * shape[d] + (shape[d] == 1 ? 0 : outCoord[d + offset]);
        return idx;
    }

    [Test]
    public void LinearCombinationWithAliasing([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 3, 8)] int terms, [Values(-1, 0, 2)] int aliased)
    {
        if (aliased >= terms) Assert.Pass("no such input to alias");
        var device = TestDevices.Get(kind);
        var rng = new Random(terms * 10 + aliased);
        int length = 4 * 9 * 7;
        var inputs = Enumerable.Range(0, terms).Select(_ => Reference.Random(rng, length)).ToArray();
        var coeffs = Reference.Random(rng, terms);
        var tensors = inputs.Select(x => device.Upload(x, 4, 9, 7)).ToArray();
        using var fresh = device.Allocate(4, 9, 7);
        var output = aliased >= 0 ? tensors[aliased] : fresh;
        device.LinearCombination(output, tensors, coeffs);
        var expected = new double[length];
        for (int i = 0; i < length; i++)
            for (int t = 0; t < terms; t++) expected[i] += (double)coeffs[t] * inputs[t][i];
        Assert.That(Reference.Compare(output.ToArray(), expected), Is.LessThanOrEqualTo(Tolerance));
        foreach (var t in tensors) t.Dispose();
    }

    /// <summary>
    /// SiLU and both GELUs element by element over a wide range, including tails where exp saturates
    /// (|x| up to 1e20): within 4e-7 of the double-precision value, relative to max(|x|, 1), and finite.
    /// 67 values, so the CPU device covers its 512-bit, 256-bit and scalar paths.
    /// </summary>
    [Test]
    public void SigmoidActivationsAcrossTheRange([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(Activation.SiLU, Activation.GeluTanh, Activation.GeluErf)] Activation activation)
    {
        var device = TestDevices.Get(kind);
        var x = Enumerable.Range(0, 61).Select(i => (float)Math.Sinh((i - 30) / 6.0) * 3).Concat([1e20f, -1e20f, 87f, -87f, 0f, -0f]).ToArray();
        using var tx = device.Upload(x, x.Length);
        using var y = device.Allocate(x.Length);
        device.Activate(tx, y, activation);
        var got = y.ToArray();
        for (int i = 0; i < x.Length; i++)
        {
            double expected = Reference.Activate(x[i], activation);
            Assert.That(float.IsFinite(got[i]), Is.True, $"{activation}({x[i]}) = {got[i]}");
            Assert.That(Math.Abs(got[i] - expected), Is.LessThanOrEqualTo(4e-7 * Math.Max(Math.Abs(x[i]), 1)), $"{activation}({x[i]})");
        }
    }

    [Test]
    public void ActivateAndGeglu([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values] Activation activation)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random((int)activation);
        var x = Reference.Random(rng, 3 * 2 * 21, 6f);
        using var tx = device.Upload(x, 3, 42);
        using var y = device.Allocate(3, 42);
        device.Activate(tx, y, activation);
        Assert.That(Reference.Compare(y.ToArray(), x.Select(v => Reference.Activate(v, activation)).ToArray()), Is.LessThanOrEqualTo(1e-5), $"{activation}");

        using var g = device.Allocate(3, 21);
        device.Geglu(tx, g);
        var expected = new double[3 * 21];
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 21; j++) expected[r * 21 + j] = x[r * 42 + j] * Reference.Activate(x[r * 42 + 21 + j], Activation.GeluErf);
        Assert.That(Reference.Compare(g.ToArray(), expected), Is.LessThanOrEqualTo(1e-5), "Geglu");
    }

    [Test]
    public void PatchifyLayoutAndRoundTrip([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(1, 2, 3)] int patch)
    {
        var device = TestDevices.Get(kind);
        int n = 2, c = 3, h = 2 * patch, w = 3 * patch, gh = h / patch, gw = w / patch, width = patch * patch * c;
        var x = Reference.Random(new Random(patch), n * c * h * w);
        using var tx = device.Upload(x, n, c, h, w);
        using var tokens = device.Allocate(n, gh * gw, width);
        device.Patchify(tx, tokens, patch);
        var expected = new double[tokens.Length];
        for (int b = 0; b < n; b++)
            for (int gy = 0; gy < gh; gy++)
                for (int gx = 0; gx < gw; gx++)
                    for (int py = 0; py < patch; py++)
                        for (int px = 0; px < patch; px++)
                            for (int ch = 0; ch < c; ch++)
                                expected[((b * gh * gw) + gy * gw + gx) * width + (py * patch + px) * c + ch] =
                                    x[((b * c + ch) * h + gy * patch + py) * w + gx * patch + px];
        Assert.That(Reference.Compare(tokens.ToArray(), expected), Is.EqualTo(0), "token layout (p, q, c)");
        using var back = device.Allocate(n, c, h, w);
        device.Unpatchify(tokens, back, patch);
        Assert.That(back.ToArray(), Is.EqualTo(x), "round trip");
    }

    [Test]
    public void TransposeMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(1, 5, 33)] int m, [Values(1, 7, 40)] int n)
    {
        var device = TestDevices.Get(kind);
        int batch = 2;
        var x = Reference.Random(new Random(m * n), batch * m * n);
        using var tx = device.Upload(x, batch, m, n);
        using var y = device.Allocate(batch, n, m);
        device.Transpose(tx, y);
        var expected = new double[x.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) expected[(b * n + j) * m + i] = x[(b * m + i) * n + j];
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.EqualTo(0));
    }

    [Test]
    public void UpsampleAndConcat([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(5);
        int n = 2, c = 3, h = 5, w = 3, cb = 4;
        var x = Reference.Random(rng, n * c * h * w);
        using var tx = device.Upload(x, n, c, h, w);
        using var up = device.Allocate(n, c, 2 * h, 2 * w);
        device.UpsampleNearest2x(tx, up);
        var expected = new double[up.Length];
        for (int p = 0; p < n * c; p++)
            for (int y = 0; y < 2 * h; y++)
                for (int xx = 0; xx < 2 * w; xx++) expected[(p * 2 * h + y) * 2 * w + xx] = x[(p * h + y / 2) * w + xx / 2];
        Assert.That(Reference.Compare(up.ToArray(), expected), Is.EqualTo(0), "upsample");

        var other = Reference.Random(rng, n * cb * h * w);
        using var tOther = device.Upload(other, n, cb, h, w);
        using var cat = device.Allocate(n, c + cb, h, w);
        device.ConcatChannels(tx, tOther, cat);
        var joined = new List<double>();
        for (int b = 0; b < n; b++)
        {
            joined.AddRange(ToDouble(x[(b * c * h * w)..((b + 1) * c * h * w)]));
            joined.AddRange(ToDouble(other[(b * cb * h * w)..((b + 1) * cb * h * w)]));
        }
        Assert.That(Reference.Compare(cat.ToArray(), joined.ToArray()), Is.EqualTo(0), "concat");
    }

    [Test]
    public void SliceChannelsTakesAChannelRange([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(6);
        int n = 3, c = 5, h = 3, w = 2, start = 1, take = 3;
        var x = Reference.Random(rng, n * c * h * w);
        using var tx = device.Upload(x, n, c, h, w);
        using var part = device.Allocate(n, take, h, w);
        device.SliceChannels(tx, start, part);
        var expected = new double[part.Length];
        for (int b = 0; b < n; b++)
            for (int ch = 0; ch < take; ch++)
                for (int p = 0; p < h * w; p++) expected[(b * take + ch) * h * w + p] = x[(b * c + start + ch) * h * w + p];
        Assert.That(Reference.Compare(part.ToArray(), expected), Is.EqualTo(0));
        using var tooMany = device.Allocate(n, c, h, w);
        Assert.That(() => device.SliceChannels(tx, 1, tooMany), Throws.ArgumentException.With.Message.Contains("SliceChannels"));
    }

    [Test]
    public void GatherRowsPicksTableRows([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(DType.F32, DType.F16, DType.BF16)] DType tableType)
    {
        // Rows picked exactly (a half table widened exactly), repeated and out of order; an index that is negative,
        // past the table, not an integer or NaN gives a zero row.
        var device = TestDevices.Get(kind);
        var rng = new Random(8);
        int rows = 6, dim = 37;
        var table = Reference.Random(rng, rows * dim);
        using var wide = device.Upload(table, rows, dim);
        using var t = tableType == DType.F32 ? device.Upload(table, rows, dim) : device.Convert(wide, tableType);
        var stored = t.ToArray();
        float[] picks = [3, 0, 5, 3, -1, 6, 2.5f, float.NaN];
        using var indices = device.Upload(picks, picks.Length);
        using var output = device.Upload(Enumerable.Repeat(7f, picks.Length * dim).ToArray(), picks.Length, dim);
        device.GatherRows(t, indices, output);
        var expected = new double[picks.Length * dim];
        for (int b = 0; b < 4; b++)
            for (int j = 0; j < dim; j++) expected[b * dim + j] = stored[(int)picks[b] * dim + j];
        Assert.That(Reference.Compare(output.ToArray(), expected), Is.EqualTo(0));
        using var wrong = device.Allocate(picks.Length, dim + 1);
        Assert.That(() => device.GatherRows(t, indices, wrong), Throws.ArgumentException.With.Message.Contains("GatherRows"));
    }

    [Test]
    public void CopyWindowMovesOnlyTheWindow([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(7);
        int n = 2, c = 3, sh = 7, sw = 9, dh = 5, dw = 6, sy = 2, sx = 3, dy = 1, dx = 2, h = 4, w = 3;
        var x = Reference.Random(rng, n * c * sh * sw);
        var y = Reference.Random(rng, n * c * dh * dw);
        using var tx = device.Upload(x, n, c, sh, sw);
        using var ty = device.Upload(y, n, c, dh, dw);
        device.CopyWindow(tx, sy, sx, ty, dy, dx, h, w);
        var expected = y.Select(v => (double)v).ToArray();
        for (int p = 0; p < n * c; p++)
            for (int r = 0; r < h; r++)
                for (int q = 0; q < w; q++) expected[(p * dh + dy + r) * dw + dx + q] = x[(p * sh + sy + r) * sw + sx + q];
        Assert.That(Reference.Compare(ty.ToArray(), expected), Is.EqualTo(0));
        Assert.That(() => device.CopyWindow(tx, 4, 0, ty, 0, 0, 4, 3), Throws.ArgumentException.With.Message.Contains("CopyWindow"), "window past the source");
        Assert.That(() => device.CopyWindow(tx, 0, 0, ty, 2, 0, 4, 3), Throws.ArgumentException.With.Message.Contains("CopyWindow"), "window past the output");
    }

    [Test]
    public void ModulateAndGatedAdd([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values] bool aliasResidual)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(aliasResidual ? 1 : 2);
        int b = 2, l = 5, d = 19;
        var x = Reference.Random(rng, b * l * d);
        var shift = Reference.Random(rng, b * d);
        var scale = Reference.Random(rng, b * d);
        var residual = Reference.Random(rng, b * l * d);
        using var tx = device.Upload(x, b, l, d);
        using var tShift = device.Upload(shift, b, d);
        using var tScale = device.Upload(scale, b, d);
        using var mod = device.Allocate(b, l, d);
        device.Modulate(tx, tShift, tScale, mod);
        var expectedMod = new double[x.Length];
        var expectedGated = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int bi = i / (l * d), j = i % d;
            expectedMod[i] = x[i] * (1.0 + scale[bi * d + j]) + shift[bi * d + j];
            expectedGated[i] = residual[i] + (double)scale[bi * d + j] * x[i];
        }
        Assert.That(Reference.Compare(mod.ToArray(), expectedMod), Is.LessThanOrEqualTo(Tolerance), "modulate");

        using var tRes = device.Upload(residual, b, l, d);
        using var fresh = device.Allocate(b, l, d);
        var output = aliasResidual ? tRes : fresh;
        device.GatedAdd(tRes, tx, tScale, output);
        Assert.That(Reference.Compare(output.ToArray(), expectedGated), Is.LessThanOrEqualTo(Tolerance), "gated add");
    }

    [Test]
    public void RandomNormalIsBatchInvariantAndStandard([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        const ulong seed = 1234;
        int perSample = 4 * 8 * 8, step = 3;
        using var batch = device.Allocate(64, 4, 8, 8);
        device.RandomNormal(batch, seed, 10, step);
        var all = batch.ToArray();
        using var single = device.Allocate(1, 4, 8, 8);
        foreach (int i in new[] { 0, 17, 63 })
        {
            device.RandomNormal(single, seed, 10 + i, step);
            Assert.That(single.ToArray(), Is.EqualTo(all[(i * perSample)..((i + 1) * perSample)]), $"sample {10 + i} drawn alone");
        }
        device.RandomNormal(single, seed, 10, step + 1);
        Assert.That(single.ToArray(), Is.Not.EqualTo(all[..perSample]), "another step gives other noise");

        double mean = all.Average(v => (double)v), std = Math.Sqrt(all.Average(v => (v - mean) * (v - mean)));
        // 16384 draws: the standard error of the mean is ~0.008, of the std ~0.006.
        Assert.That(mean, Is.EqualTo(0).Within(0.04));
        Assert.That(std, Is.EqualTo(1).Within(0.03));
    }
}
