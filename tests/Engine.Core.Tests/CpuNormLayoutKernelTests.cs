using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU device's norm, layout and GEGLU kernels at the edges of their vector and job paths, on one and
/// two threads, against float64 references: row widths with and without 16- and 8-lane tails, one row and
/// enough rows for several parallel jobs, GroupNorm groups longer than one statistics block (4096 floats)
/// and not a multiple of it, transposes with 8x8 blocks and scalar edges, upsampling of every row width and
/// of an output large enough to be streamed.
/// </summary>
public class CpuNormLayoutKernelTests
{
    private static readonly int[] Threads = [1, 2];

    [Test]
    public void LayerNormRowsAndTails([ValueSource(nameof(Threads))] int threads,
        [Values(1, 9, 16, 25, 40, 320, 1000)] int d, [Values(1, 3, 70)] int rows, [Values] bool affine)
    {
        using var device = new CpuDevice(threads);
        var rng = new Random(d * 131 + rows);
        // A mean far from zero: a one-pass variance in float would be visibly wrong.
        var x = Reference.Random(rng, rows * d).Select(v => v * 2 + 40).ToArray();
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
                expected[r * d + j] = (x[r * d + j] - mean) / Math.Sqrt(var + 1e-5) * (gamma?[j] ?? 1) + (beta?[j] ?? 0);
        }
        using var tx = device.Upload(x, rows, d);
        using var tg = gamma is null ? null : device.Upload(gamma, d);
        using var tb = beta is null ? null : device.Upload(beta, d);
        using var y = device.Allocate(rows, d);
        device.LayerNorm(tx, tg, tb, y, 1e-5f);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void GroupNormAcrossStatisticsBlocks([ValueSource(nameof(Threads))] int threads,
        [Values(1, 3)] int batch, [Values("4x3x3", "8x50x61", "6x64x64", "2x1x9000")] string shape, [Values] bool silu)
    {
        var dims = shape.Split('x').Select(int.Parse).ToArray();
        int c = dims[0], h = dims[1], w = dims[2], groups = c / 2 > 0 ? c / 2 : 1, perGroup = c / groups, spatial = h * w;
        using var device = new CpuDevice(threads);
        var rng = new Random(c * 7 + h + batch);
        var x = Reference.Random(rng, batch * c * spatial).Select(v => v * 3 + 100).ToArray();
        var gamma = Reference.Random(rng, c);
        var beta = Reference.Random(rng, c);
        var expected = new double[x.Length];
        for (int b = 0; b < batch; b++)
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
                    double yv = (x[start + i] - mean) / Math.Sqrt(var + 1e-5) * gamma[ch] + beta[ch];
                    expected[start + i] = silu ? Reference.Silu(yv) : yv;
                }
            }
        using var tx = device.Upload(x, batch, c, h, w);
        using var tg = device.Upload(gamma, c);
        using var tb = device.Upload(beta, c);
        using var y = device.Allocate(batch, c, h, w);
        device.GroupNorm(tx, tg, tb, y, groups, 1e-5f, silu);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4));
    }

    [Test]
    public void TransposeBlocksAndEdges([ValueSource(nameof(Threads))] int threads,
        [Values(1, 3)] int batch, [Values("8x8", "9x15", "64x320", "130x17", "200x72", "1x33")] string shape)
    {
        var dims = shape.Split('x').Select(int.Parse).ToArray();
        int m = dims[0], n = dims[1];
        using var device = new CpuDevice(threads);
        var x = Reference.Random(new Random(m * n + batch), batch * m * n);
        var expected = new float[x.Length];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++) expected[(b * n + j) * m + i] = x[(b * m + i) * n + j];
        using var tx = device.Upload(x, batch, m, n);
        using var y = device.Allocate(batch, n, m);
        device.Transpose(tx, y);
        Assert.That(y.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void UpsampleEveryRowWidth([ValueSource(nameof(Threads))] int threads,
        [Values(1, 2)] int batch, [Values("3x1x1", "2x4x5", "3x3x8", "2x7x13", "4x16x16", "1x5x37", "600x8x8")] string shape)
    {
        var dims = shape.Split('x').Select(int.Parse).ToArray();
        int c = dims[0], h = dims[1], w = dims[2];
        using var device = new CpuDevice(threads);
        var x = Reference.Random(new Random(c * h * w + batch), batch * c * h * w);
        var expected = new float[4 * x.Length];
        for (int p = 0; p < batch * c; p++)
            for (int yy = 0; yy < 2 * h; yy++)
                for (int xx = 0; xx < 2 * w; xx++)
                    expected[(p * 2 * h + yy) * 2 * w + xx] = x[(p * h + yy / 2) * w + xx / 2];
        using var tx = device.Upload(x, batch, c, h, w);
        using var y = device.Allocate(batch, c, 2 * h, 2 * w);
        device.UpsampleNearest2x(tx, y);
        Assert.That(y.ToArray(), Is.EqualTo(expected));
    }

    /// <summary>An output of 64 MiB, from which the upsampling writes with non-temporal stores.</summary>
    [Test]
    public void UpsampleStreamsLargeOutputs([ValueSource(nameof(Threads))] int threads)
    {
        int c = 16, h = 512, w = 512;
        using var device = new CpuDevice(threads);
        var x = Reference.Random(new Random(5), c * h * w);
        using var tx = device.Upload(x, 1, c, h, w);
        using var y = device.Allocate(1, c, 2 * h, 2 * w);
        device.UpsampleNearest2x(tx, y);
        var actual = y.ToArray();
        int mismatches = 0;
        for (int p = 0; p < c; p++)
            for (int yy = 0; yy < 2 * h; yy++)
                for (int xx = 0; xx < 2 * w; xx++)
                    if (actual[((long)p * 2 * h + yy) * 2 * w + xx] != x[(p * h + yy / 2) * w + xx / 2]) mismatches++;
        Assert.That(mismatches, Is.Zero);
    }

    [Test]
    public void GegluRowsAndTails([ValueSource(nameof(Threads))] int threads, [Values(1, 9, 17, 40, 1280)] int d, [Values(1, 2, 30)] int rows)
    {
        using var device = new CpuDevice(threads);
        var x = Reference.Random(new Random(d + rows), rows * 2 * d, 4f);
        var expected = new double[rows * d];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < d; j++)
            {
                double a = x[r * 2 * d + j], g = x[r * 2 * d + d + j];
                expected[r * d + j] = a * Reference.Activate(g, Activation.GeluErf);
            }
        using var tx = device.Upload(x, rows, 2 * d);
        using var y = device.Allocate(rows, d);
        device.Geglu(tx, y);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
    }
}
