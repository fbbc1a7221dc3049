namespace Engine.Core.Tests;

/// <summary>Fused attention against a naive double softmax(Q K^T / sqrt d) V, for odd lengths and head dims 8..160.</summary>
public class AttentionTests
{
    // (B, Lq, Lkv, heads, d): odd lengths, single rows, cross attention, and Lkv longer than one key tile.
    private static readonly int[][] Shapes =
    [
        [1, 1, 1, 1, 8], [2, 7, 5, 3, 8], [1, 13, 70, 2, 40], [2, 9, 3, 1, 80], [1, 5, 133, 2, 160], [1, 37, 37, 2, 40], [3, 2, 17, 1, 160],
    ];

    [Test]
    public void AttentionMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Range(0, 6)] int shape)
    {
        var s = Shapes[shape];
        // Scale 2 on q and k makes the softmax peaky enough that a missing max-subtraction or rescale shows.
        CheckAgainstNaive(TestDevices.Get(kind), s[0], s[1], s[2], s[3], s[4], 1f, new Random(shape));
    }

    // CPU blocking edges (cpu only: sizes the ILGPU CPU accelerator would take minutes over). Key ranges
    // of one whole tile (<= 512, exact softmax) and of several tiles (online rescale, last tile partial);
    // query counts around the 64-row blocks and 8-row transposes; d with and without a multiple of 8;
    // cross attention over 77 keys; batch > 1. (B, Lq, Lkv, heads, d, score scale x sqrt d)
    private static readonly float[][] BlockingShapes =
    [
        [1, 64, 512, 2, 40, 1], [2, 67, 513, 2, 64, 1], [1, 130, 77, 3, 40, 1], [2, 129, 77, 1, 80, 1], [1, 19, 45, 2, 36, 1],
        [2, 71, 1029, 1, 80, 1], [1, 33, 777, 2, 40, 8], [1, 200, 256, 2, 80, 8], [3, 9, 300, 1, 72, 1], [1, 65, 1300, 1, 24, 8],
    ];

    [Test]
    public void CpuAttentionBlockingMatchesNaive([Range(0, 9)] int shape)
    {
        var s = BlockingShapes[shape];
        // A scale above 1/sqrt(d) makes the row maxima move between key tiles, exercising the rescale.
        CheckAgainstNaive(TestDevices.Get("cpu"), (int)s[0], (int)s[1], (int)s[2], (int)s[3], (int)s[4], s[5], new Random(100 + shape));
    }

    [Test]
    public void CpuAttentionMatchesNaiveForEveryHeadDim()
    {
        // Every d from 8 to 160 (the score pass's depth loop, d not a multiple of 8 or 16), 70 queries (a
        // full and a partial 64-row block) and key counts that are rarely a multiple of the 8-key groups.
        var device = TestDevices.Get("cpu");
        for (int d = 8; d <= 160; d++)
            CheckAgainstNaive(device, 1, 70, 29 + d % 37, 1, d, 1f, new Random(1000 + d));
    }

    [Test]
    public void CpuAttentionFollowsRisingScores([Values(77, 600, 1500)] int lk)
    {
        // Keys whose scores grow along the sequence (k_j proportional to j u, q . u > 0) from 0 to about 140
        // (200 in base 2), so the reference max of the score pass is raised again and again within a panel and
        // in later key tiles; the probabilities, sums and output computed before each raise must be rescaled.
        const int lq = 40, d = 24;
        var device = TestDevices.Get("cpu");
        var rng = new Random(lk);
        var u = Reference.Random(rng, d, 1f);
        float slope = 140f * MathF.Sqrt(d) / (lk * u.Sum(x => x * x));
        var q = new float[lq * d];
        var k = new float[lk * d];
        for (int i = 0; i < lq; i++)
            for (int t = 0; t < d; t++) q[i * d + t] = u[t] * (0.5f + (float)rng.NextDouble()) + 0.05f * (float)(rng.NextDouble() - 0.5);
        for (int j = 0; j < lk; j++)
            for (int t = 0; t < d; t++) k[j * d + t] = u[t] * j * slope + 0.05f * (float)(rng.NextDouble() - 0.5);
        var v = Reference.Random(rng, lk * d);
        CheckAgainstNaive(device, q, k, v, 1, lq, lk, 1, d, 1f / MathF.Sqrt(d));
    }

    [Test]
    public void CpuAttentionWithVeryNegativeScores()
    {
        // Every score far below zero (about -290 in base 2, beyond the float exponent range if the max were
        // not subtracted), with a spread of a few units between keys.
        const int lq = 33, lk = 300, d = 40;
        var device = TestDevices.Get("cpu");
        var rng = new Random(5);
        var q = Enumerable.Repeat(1f, lq * d).ToArray();
        var k = new float[lk * d];
        for (int i = 0; i < k.Length; i++) k[i] = -5f + 0.3f * (float)rng.NextDouble();
        for (int i = 0; i < q.Length; i++) q[i] += 0.2f * (float)(rng.NextDouble() - 0.5);
        var v = Reference.Random(rng, lk * d);
        CheckAgainstNaive(device, q, k, v, 1, lq, lk, 1, d, 1f);
    }

    /// <summary>
    /// Random q, k (scale 2) and v (scale 1) of the given shape through the device's attention with score
    /// scale <paramref name="scaleFactor"/> / sqrt d, against the naive double reference within 1e-4.
    /// </summary>
    private static void CheckAgainstNaive(Device device, int b, int lq, int lk, int heads, int d, float scaleFactor, Random rng)
    {
        int width = heads * d;
        var q = Reference.Random(rng, b * lq * width, 2f);
        var k = Reference.Random(rng, b * lk * width, 2f);
        var v = Reference.Random(rng, b * lk * width);
        CheckAgainstNaive(device, q, k, v, b, lq, lk, heads, d, scaleFactor / MathF.Sqrt(d));
    }

    /// <summary>The device's attention of the given q, k, v against the naive double reference within 1e-4.</summary>
    private static void CheckAgainstNaive(Device device, float[] q, float[] k, float[] v, int b, int lq, int lk, int heads, int d, float scale)
    {
        int width = heads * d;
        using var tq = device.Upload(q, b, lq, width);
        using var tk = device.Upload(k, b, lk, width);
        using var tv = device.Upload(v, b, lk, width);
        using var o = device.Allocate(b, lq, width);
        device.Attention(tq, tk, tv, o, heads, scale);
        var expected = Reference.Attention(q, k, v, b, lq, lk, heads, d, scale);
        Assert.That(Reference.Compare(o.ToArray(), expected), Is.LessThanOrEqualTo(1e-4), $"B {b} Lq {lq} Lkv {lk} heads {heads} d {d} scale {scale}");
    }

    [Test]
    public void CpuAttentionWithoutKeysIsZero()
    {
        // softmax(Q K^T) V over zero keys is an empty weighted sum (as matmul gives for PyTorch's math path).
        var device = TestDevices.Get("cpu");
        using var q = device.Upload(Reference.Random(new Random(7), 3 * 2 * 16, 1f), 3, 2, 16);
        using var k = device.Allocate(3, 0, 16);
        using var v = device.Allocate(3, 0, 16);
        using var o = device.Upload(Enumerable.Repeat(5f, 3 * 2 * 16).ToArray(), 3, 2, 16);
        device.Attention(q, k, v, o, 2, 0.25f);
        Assert.That(o.ToArray(), Is.All.EqualTo(0f));
    }
}
