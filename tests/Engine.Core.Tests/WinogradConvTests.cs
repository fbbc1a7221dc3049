using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU device's Winograd F(2x2, 3x3) convolution forced on 3x3 stride-1 pad-1 shapes against a float64
/// reference: odd and even sizes (partial tiles), 1x1 and 2x2 images, tile rows longer than one 16-tile vector,
/// batches, channel counts that are not multiples of the GEMM's panels, with and without bias, f32, f16
/// and bf16 weights, one thread and two (parallel blocks, and one block split across the threads). Tolerance 2e-6 of the
/// largest reference value: the transforms' coefficients (0, ±1, 1/2) are exact in float32, so only the
/// additions of the transforms round beyond what the direct kernel does.
/// </summary>
public class WinogradConvTests
{
    private const double Tolerance = 2e-6;

    private static void Check(int threads, int seed, int batch, int cin, int h, int w, int cout, bool withBias, DType weights)
    {
        var device = new CpuDevice(threads) { ConvAlgorithm = ConvAlgorithm.Winograd };
        Assert.That(device.ChooseConv(h * w, cout, 3, 3, 1, 1, cin), Is.EqualTo(ConvAlgorithm.Winograd));
        var rng = new Random(seed);
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * 9, 1f / MathF.Sqrt(cin * 9));
        float[]? bias = withBias ? Reference.Random(rng, cout, 0.5f) : null;
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw32 = device.Upload(wt, cout, cin, 3, 3);
        using var tw = weights == DType.F32 ? null : device.Convert(tw32, weights);
        // The reference multiplies by the weights as stored (rounded to f16 or bf16 when they are).
        if (tw is not null) wt = tw.ToArray();
        using var tb = bias is null ? null : device.Upload(bias, cout);
        using var y = device.Allocate(batch, cout, h, w);
        device.Conv2d(tx, tw ?? tw32, tb, y, 1, 1);
        var expected = Reference.Conv2d(x, wt, bias, batch, cin, h, w, cout, 3, 3, 1, 1);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(Tolerance),
            $"{threads} threads: batch {batch}, {cin}->{cout} at {h}x{w}, bias {withBias}, {weights} weights");
    }

    [Test]
    public void MatchesFloat64Reference([Values(1, 2)] int threads, [Values(false, true)] bool withBias, [Values(DType.F32, DType.F16, DType.BF16)] DType weights)
    {
        int seed = 0;
        // 1x1 and 2x2 (one tile, mostly padding), odd sizes (partial tiles), 34x70 (rows of 35 tiles: two full
        // vectors and a partial one), 5x40 (few rows, long rows).
        (int h, int w)[] sizes = [(1, 1), (2, 2), (3, 5), (7, 7), (8, 8), (13, 11), (34, 70), (5, 40)];
        foreach (var (h, w) in sizes)
            foreach (var (cin, cout) in new[] { (1, 1), (3, 5), (17, 9), (33, 40) })
                foreach (int batch in new[] { 1, 3 })
                    Check(threads, ++seed, batch, cin, h, w, cout, withBias, weights);
    }

    [Test]
    public void ManyBlocksMatchFloat64Reference([Values(1, 2)] int threads)
    {
        // 2 x 19 x 23 tiles: several 128-tile blocks, the last partial, blocks crossing tile rows and images.
        Check(threads, 500, 2, 40, 37, 45, 24, withBias: true, DType.F32);
        Check(threads, 501, 1, 130, 64, 64, 70, withBias: true, DType.F16);
    }

    [Test]
    public void PassesOverOutputChannelsMatchFloat64Reference([Values(1, 2)] int threads, [Values(DType.F32, DType.F16)] DType weights)
    {
        // Over 2^20 channel pairs: two passes over slices of the output channels (1001: the second slice ends in a
        // partial panel), each transforming its filters and the input again, writing its slice of y.
        Check(threads, 600, 2, 1100, 5, 6, 1001, withBias: true, weights);
    }

    /// <summary>
    /// Error at SD 1.5 VAE shapes (PyTorch's default init scale, weights uniform within 1/sqrt(9 Cin); inputs within 1)
    /// of Winograd and of the direct kernel against float64 on 4096 sampled outputs: Winograd's max and RMS error stay
    /// within 3x the direct kernel's. Measured on AVX-512 (2026-12-03, outputs of RMS 0.33): 512->512 at 64x64, Winograd
    /// max 4.5e-7 / RMS 1.2e-7 against direct 2.7e-6 / 4.0e-7 (ratios 0.17, 0.30); 128->128 at 128x128, 5.8e-7 / 1.2e-7
    /// against 1.3e-6 / 2.0e-7 (0.45, 0.59). Winograd is the more accurate here: each of its products sums Cin terms
    /// in KC-deep slices, where the direct kernel chains all 9 Cin taps into one accumulator.
    /// </summary>
    [TestCase(512, 64)]
    [TestCase(128, 128)]
    public void SdShapesErrorWithinFewTimesDirect(int channels, int size)
    {
        if (!DirectConv.Supports512 && !DirectConv.Supports256) Assert.Ignore("No direct kernel on this CPU.");
        var rng = new Random(channels + size);
        var x = Reference.Random(rng, channels * size * size);
        var wt = Reference.Random(rng, channels * channels * 9, 1f / MathF.Sqrt(channels * 9));
        var bias = Reference.Random(rng, channels, 0.1f);
        (double Max, double Rms) Error(ConvAlgorithm algorithm, out double outputRms)
        {
            using var device = new CpuDevice(2) { ConvAlgorithm = algorithm };
            using var tx = device.Upload(x, 1, channels, size, size);
            using var tw = device.Upload(wt, channels, channels, 3, 3);
            using var tb = device.Upload(bias, channels);
            using var y = device.Allocate(1, channels, size, size);
            device.Conv2d(tx, tw, tb, y, 1, 1);
            var got = y.ToArray();
            var pick = new Random(7);
            double max = 0, sum = 0, sumRef = 0;
            const int Samples = 4096;
            for (int i = 0; i < Samples; i++)
            {
                int co = pick.Next(channels), oy = pick.Next(size), ox = pick.Next(size);
                double r = bias[co];
                for (int ci = 0; ci < channels; ci++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                        {
                            int iy = oy - 1 + ky, ix = ox - 1 + kx;
                            if (iy < 0 || iy >= size || ix < 0 || ix >= size) continue;
                            r += (double)x[(ci * size + iy) * size + ix] * wt[((co * channels + ci) * 3 + ky) * 3 + kx];
                        }
                double e = Math.Abs(got[(co * size + oy) * size + ox] - r);
                max = Math.Max(max, e); sum += e * e; sumRef += r * r;
            }
            outputRms = Math.Sqrt(sumRef / Samples);
            return (max, Math.Sqrt(sum / Samples));
        }
        var direct = DirectConv.Supports512 ? ConvAlgorithm.Direct512 : ConvAlgorithm.Direct256;
        var (dMax, dRms) = Error(direct, out double rms);
        var (wMax, wRms) = Error(ConvAlgorithm.Winograd, out _);
        TestContext.Out.WriteLine($"{channels}->{channels} at {size}x{size} (output RMS {rms:G3}): Winograd max {wMax:G3} RMS {wRms:G3}; direct max {dMax:G3} RMS {dRms:G3}; ratios {wMax / dMax:F2}, {wRms / dRms:F2}");
        Assert.That(wMax, Is.LessThanOrEqualTo(3 * dMax), "max error against the direct kernel's");
        Assert.That(wRms, Is.LessThanOrEqualTo(3 * dRms), "RMS error against the direct kernel's");
    }

    [Test]
    public void AutoPicksWinogradForLargeChannelCounts()
    {
        if (!DirectConv.Supports512) Assert.Ignore("Winograd is chosen only on AVX-512 CPUs.");
        var device = new CpuDevice();
        Assert.Multiple(() =>
        {
            Assert.That(device.ChooseConv(64 * 64, 512, 3, 3, 1, 1, 512), Is.EqualTo(ConvAlgorithm.Winograd), "VAE 512 at 64x64");
            Assert.That(device.ChooseConv(16 * 16, 640, 3, 3, 1, 1, 1280), Is.EqualTo(ConvAlgorithm.Winograd), "UNet 1280 -> 640 at 16x16");
            Assert.That(device.ChooseConv(8 * 8, 640, 3, 3, 1, 1, 640), Is.EqualTo(ConvAlgorithm.Direct512), "8x8: too few tiles");
            Assert.That(device.ChooseConv(32 * 32, 1280, 3, 3, 1, 1, 1280), Is.EqualTo(ConvAlgorithm.Winograd), "filter scratch over 64 MB: in passes");
            Assert.That(device.ChooseConv(16 * 16, 1280, 3, 3, 1, 1, 1280), Is.EqualTo(ConvAlgorithm.Direct512), "filter scratch over 64 MB, too few tiles for passes");
            Assert.That(device.ChooseConv(64 * 64, 64, 3, 3, 1, 1, 64), Is.EqualTo(ConvAlgorithm.Direct512), "few channels");
            Assert.That(device.ChooseConv(64 * 64, 512, 3, 3, 2, 1, 512), Is.EqualTo(ConvAlgorithm.Direct512), "stride 2");
            Assert.That(device.ChooseConv(64 * 64, 512, 1, 1, 1, 0, 512), Is.EqualTo(ConvAlgorithm.Gemm), "1x1");
        });
        // Forced, Winograd applies to 3x3 stride-1 pad-1 shapes only; the others keep the automatic choice.
        var forced = new CpuDevice { ConvAlgorithm = ConvAlgorithm.Winograd };
        Assert.That(forced.ChooseConv(8 * 8, 4, 3, 3, 1, 1, 4), Is.EqualTo(ConvAlgorithm.Winograd));
        Assert.That(forced.ChooseConv(8 * 8, 4, 3, 3, 2, 1, 4), Is.EqualTo(device.ChooseConv(8 * 8, 4, 3, 3, 2, 1, 4)));
    }
}
