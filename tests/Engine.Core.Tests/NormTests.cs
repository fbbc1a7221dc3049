namespace Engine.Core.Tests;

/// <summary>GroupNorm (with and without SiLU, affine or not), LayerNorm and Softmax against naive double code.</summary>
public class NormTests
{
    [Test]
    public void GroupNormMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 4, 12)] int groups, [Values] bool silu, [Values] bool affine)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(groups);
        int n = 2, c = 12, h = 5, w = 7, spatial = h * w, perGroup = c / groups;
        // An offset makes a one-pass variance visibly wrong.
        var x = Reference.Random(rng, n * c * spatial).Select(v => v * 3 + 5).ToArray();
        var gamma = affine ? Reference.Random(rng, c) : null;
        var beta = affine ? Reference.Random(rng, c) : null;
        var expected = new double[x.Length];
        for (int b = 0; b < n; b++)
            for (int g = 0; g < groups; g++)
            {
                int start = (b * c + g * perGroup) * spatial, count = perGroup * spatial;
                double mean = 0, var = 0;
                for (int i = 0; i < count; i++) mean += x[start + i];
                mean /= count;
                for (int i = 0; i < count; i++) var += (x[start + i] - mean) * (x[start + i] - mean);
                var /= count;
                for (int i = 0; i < count; i++)
                {
                    int ch = g * perGroup + i / spatial;
                    double yv = (x[start + i] - mean) / Math.Sqrt(var + 1e-5) * (gamma?[ch] ?? 1) + (beta?[ch] ?? 0);
                    expected[start + i] = silu ? Reference.Silu(yv) : yv;
                }
            }
        using var tx = device.Upload(x, n, c, h, w);
        using var tg = gamma is null ? null : device.Upload(gamma, c);
        using var tb = beta is null ? null : device.Upload(beta, c);
        using var y = device.Allocate(n, c, h, w);
        device.GroupNorm(tx, tg, tb, y, groups, 1e-5f, silu);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void LayerNormMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [Values(1, 7, 40, 129)] int d, [Values] bool affine)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(d);
        int rows = 6;
        var x = Reference.Random(rng, rows * d).Select(v => v * 2 - 3).ToArray();
        var gamma = affine ? Reference.Random(rng, d) : null;
        var beta = affine ? Reference.Random(rng, d) : null;
        var expected = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int j = 0; j < d; j++) mean += x[r * d + j];
            mean /= d;
            for (int j = 0; j < d; j++) var += (x[r * d + j] - mean) * (x[r * d + j] - mean);
            var /= d;
            for (int j = 0; j < d; j++)
                expected[r * d + j] = (x[r * d + j] - mean) / Math.Sqrt(var + 1e-6) * (gamma?[j] ?? 1) + (beta?[j] ?? 0);
        }
        using var tx = device.Upload(x, 2, 3, d);
        using var tg = gamma is null ? null : device.Upload(gamma, d);
        using var tb = beta is null ? null : device.Upload(beta, d);
        using var y = device.Allocate(2, 3, d);
        device.LayerNorm(tx, tg, tb, y, 1e-6f);
        // d = 1 normalises to exactly beta; the reference is then beta too.
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void SoftmaxMatchesNaive([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [Values(1, 5, 33, 100)] int d)
    {
        var device = TestDevices.Get(kind);
        var rng = new Random(d);
        int rows = 4;
        var x = Reference.Random(rng, rows * d, 20f);
        var expected = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double max = double.NegativeInfinity, sum = 0;
            for (int j = 0; j < d; j++) max = Math.Max(max, x[r * d + j]);
            for (int j = 0; j < d; j++) sum += Math.Exp(x[r * d + j] - max);
            for (int j = 0; j < d; j++) expected[r * d + j] = Math.Exp(x[r * d + j] - max) / sum;
        }
        using var tx = device.Upload(x, rows, d);
        using var y = device.Allocate(rows, d);
        device.Softmax(tx, y);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }
}
