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
        using var tq = device.Upload(q, b, lq, width);
        using var tk = device.Upload(k, b, lk, width);
        using var tv = device.Upload(v, b, lk, width);
        using var o = device.Allocate(b, lq, width);
        float scale = scaleFactor / MathF.Sqrt(d);
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
