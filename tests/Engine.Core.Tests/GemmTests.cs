namespace Engine.Core.Tests;

/// <summary>MatMul and Linear against naive double loops: odd shapes, every transpose, broadcast B, bias, activations.</summary>
public class GemmTests
{
    private const double Tolerance = 1e-4;

    // (M, N, K) chosen to hit partial register tiles, a single element, and (the last one) K deeper
    // than one packing block.
    private static readonly int[][] Shapes = [[1, 1, 1], [7, 13, 5], [33, 17, 29], [19, 70, 41], [45, 37, 300]];

    private static void Check(string kind, int batch, int bBatch, int m, int n, int k, bool ta, bool tb, bool withBias,
        Activation activation, float alpha, int seed)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(seed);
        var a = Reference.Random(rng, batch * m * k);
        var b = Reference.Random(rng, bBatch * k * n);
        var bias = withBias ? Reference.Random(rng, n) : null;
        using var ta_ = device.Upload(a, ta ? new[] { batch, k, m } : new[] { batch, m, k });
        using var tb_ = bBatch == 1 ? device.Upload(b, tb ? new[] { n, k } : new[] { k, n }) : device.Upload(b, tb ? new[] { batch, n, k } : new[] { batch, k, n });
        using var tBias = bias is null ? null : device.Upload(bias, n);
        using var c = device.Allocate(batch, m, n);
        device.MatMul(ta_, tb_, c, ta, tb, tBias, activation, alpha);
        var expected = Reference.MatMul(a, b, batch, bBatch, m, n, k, ta, tb, bias, activation, alpha);
        Assert.That(Reference.Compare(c.ToArray(), expected), Is.LessThanOrEqualTo(Tolerance),
            $"MatMul batch {batch} (b batch {bBatch}) {m}x{n}x{k} ta {ta} tb {tb} bias {withBias} {activation} alpha {alpha}");
    }

    [Test]
    public void MatMulAllTransposes([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Range(0, 4)] int shape, [Values] bool transposeA, [Values] bool transposeB)
    {
        var s = Shapes[shape];
        Check(kind, 1, 1, s[0], s[1], s[2], transposeA, transposeB, false, Activation.None, 1f, shape);
    }

    [Test]
    public void MatMulBatchedAndBroadcast([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 3)] int bBatchMode, [Values] bool transposeA, [Values] bool transposeB)
    {
        int batch = 3;
        Check(kind, batch, bBatchMode == 1 ? 1 : batch, 11, 23, 17, transposeA, transposeB, false, Activation.None, 1f, 7);
    }

    [Test]
    public void MatMulBiasActivationAlpha([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values] Activation activation, [Values] bool transposeB)
    {
        Check(kind, 2, 1, 9, 21, 13, false, transposeB, true, activation, 0.5f, 11);
    }

    /// <summary>
    /// Products of one to four rows against a transposed B (Linear on a few vectors) take the
    /// dot-product path on the CPU; five rows and more the packed GEMM. Wide enough (N 300, K 130) for
    /// parallel column jobs with a partial last one, with bias, activation, alpha and a shared B. On ILGPU devices M up to 16
    /// runs on the few-rows kernel (one to four blocks of four rows).
    /// </summary>
    [Test]
    public void FewRowsAgainstTransposedB([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 2, 4, 5, 13, 16)] int m, [Values(1, 2)] int batch)
    {
        Check(kind, batch, 1, m, 300, 130, false, true, true, Activation.GeluTanh, 0.5f, 13 + m);
        Check(kind, batch, 1, m, 3, 7, false, true, false, Activation.None, 1f, 17 + m);
    }

    /// <summary>
    /// A few rows against B stored [K, N] (an embedding table behind a one-hot product), A plain and transposed: on
    /// ILGPU devices the few-rows kernel's column-per-lane form, its warps splitting K.
    /// </summary>
    [Test]
    public void FewRowsAgainstPlainB([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 2, 5, 16)] int m, [Values(1, 2)] int batch)
    {
        Check(kind, batch, 1, m, 70, 1001, false, false, true, Activation.SiLU, 0.5f, 29 + m);
        Check(kind, batch, 1, m, 33, 37, true, false, false, Activation.None, 1f, 31 + m);
    }

    [Test]
    public void LinearOnRank3Input([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(3);
        int rows = 2 * 5, inF = 19, outF = 27;
        var x = Reference.Random(rng, rows * inF);
        var w = Reference.Random(rng, outF * inF);
        var bias = Reference.Random(rng, outF);
        using var tx = device.Upload(x, 2, 5, inF);
        using var tw = device.Upload(w, outF, inF);
        using var tb = device.Upload(bias, outF);
        using var y = device.Allocate(2, 5, outF);
        device.Linear(tx, tw, tb, y, Activation.GeluTanh);
        var expected = Reference.MatMul(x, w, 1, 1, rows, outF, inF, false, true, bias, Activation.GeluTanh, 1f);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(Tolerance));
    }
}
