using Engine.Core;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU device's convolution algorithms forced one at a time (direct AVX-512, direct AVX2, packed
/// GEMM) against naive loops, on shapes that reach every edge of the direct kernel: channel counts
/// that leave partial 4-channel tiles, position counts that leave partial vectors and partial 6- or
/// 3-vector tiles, odd sizes, strides 1-3 (the phase planes), padding 0-2, batches, with and without
/// bias, one thread and two; input channels in several cache blocks, weights packed or read in place,
/// f16 weights.
/// </summary>
public class DirectConvTests
{
    /// <summary>The forced algorithms, by name (the enum is internal to the engine).</summary>
    public static IEnumerable<string> Algorithms() => ["Gemm", "Direct256", "Direct512"];

    private static CpuDevice Device(string name, int threads)
    {
        var algorithm = Enum.Parse<ConvAlgorithm>(name);
        if (algorithm == ConvAlgorithm.Direct512 && !DirectConv.Supports512) Assert.Ignore("This CPU has no AVX-512F.");
        if (algorithm == ConvAlgorithm.Direct256 && !DirectConv.Supports256) Assert.Ignore("This CPU has no AVX2/FMA.");
        return new CpuDevice(threads) { ConvAlgorithm = algorithm };
    }

    private static void Check(CpuDevice device, int seed, int batch, int cin, int h, int w, int cout, int kh, int kw, int stride, int pad, bool withBias)
    {
        var rng = new Random(seed);
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * kh * kw);
        float[]? bias = withBias ? Reference.Random(rng, cout) : null;
        int ho = (h + 2 * pad - kh) / stride + 1, wo = (w + 2 * pad - kw) / stride + 1;
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw = device.Upload(wt, cout, cin, kh, kw);
        using var tb = bias is null ? null : device.Upload(bias, cout);
        using var y = device.Allocate(batch, cout, ho, wo);
        device.Conv2d(tx, tw, tb, y, stride, pad);
        var expected = Reference.Conv2d(x, wt, bias, batch, cin, h, w, cout, kh, kw, stride, pad);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4),
            $"{device.ConvAlgorithm}: batch {batch}, {cin}->{cout} at {h}x{w}, kernel {kh}x{kw}, stride {stride}, padding {pad}, bias {withBias}");
    }

    [Test]
    public void SmallChannelsMatchNaive([ValueSource(nameof(Algorithms))] string algorithm,
        [Values(1, 2)] int stride, [Values(0, 1)] int pad, [Values(false, true)] bool withBias)
    {
        var device = Device(algorithm, threads: 2);
        // 28x28 (several vectors per row), 13x11 (odd), 7x7 (vectors spanning rows), 3x17 (few rows, long rows).
        (int h, int w)[] sizes = [(28, 28), (13, 11), (7, 7), (3, 17)];
        int seed = 0;
        foreach (var (h, w) in sizes)
            foreach (var (cin, cout) in new[] { (1, 32), (3, 5), (32, 32), (17, 9), (64, 1) })
                foreach (int batch in new[] { 1, 3 })
                    Check(device, ++seed, batch, cin, h, w, cout, 3, 3, stride, pad, withBias);
    }

    [Test]
    public void KernelShapesMatchNaive([ValueSource(nameof(Algorithms))] string algorithm,
        [Values(1, 2)] int threads, [Values(1, 2, 3)] int stride)
    {
        var device = Device(algorithm, threads);
        int seed = 100;
        foreach (var (kh, kw, pad) in new[] { (1, 1, 0), (1, 1, 1), (5, 5, 2), (3, 1, 1), (1, 3, 0), (2, 2, 0), (3, 3, 2) })
            foreach (var (batch, h, w) in new[] { (1, 9, 11), (5, 6, 5), (16, 4, 4), (2, 30, 33) })
                Check(device, ++seed, batch, 6, h, w, 10, kh, kw, stride, pad, withBias: seed % 2 == 0);
    }

    [Test]
    public void LargeImageUsesSeveralBands([ValueSource(nameof(Algorithms))] string algorithm)
    {
        // 130 channels x 74 columns: the band budget holds about 25 rows, so the 70 output rows take
        // several bands, each copying its halo rows again.
        var device = Device(algorithm, threads: 2);
        Check(device, 7, 1, 130, 70, 72, 7, 3, 3, 1, 1, withBias: true);
    }

    [Test]
    public void ChannelBlocksMatchNaive([ValueSource(nameof(Algorithms))] string algorithm,
        [Values(1, 2)] int threads, [Values(1, 2)] int stride)
    {
        // More input channels than one cache block holds (the last block partial), with enough output
        // positions that the weights are packed (40x40) and with so few that they are read in place (9x7 x 2).
        var device = Device(algorithm, threads);
        Check(device, 201, 1, 61, 40, 40, 10, 3, 3, stride, 1, withBias: true);
        Check(device, 202, 2, 70, 9, 7, 6, 3, 3, stride, 1, withBias: false);
        Check(device, 203, 3, 45, 17, 23, 13, 3, 3, stride, 0, withBias: true);
    }

    [Test]
    public void HalfWeightsMatchNaive([ValueSource(nameof(Algorithms))] string algorithm, [Values(1, 2)] int stride)
    {
        // F16 weights (widened to float32 as the direct kernels pack them), with many positions and with few.
        var device = Device(algorithm, threads: 2);
        int seed = 300;
        foreach (var (batch, cin, h, w, cout, pad) in new[] { (1, 61, 40, 40, 10, 1), (2, 19, 9, 7, 5, 1), (1, 3, 13, 11, 1, 0) })
        {
            var rng = new Random(++seed);
            var x = Reference.Random(rng, batch * cin * h * w);
            var bias = Reference.Random(rng, cout);
            using var wide = device.Upload(Reference.Random(rng, cout * cin * 9), cout, cin, 3, 3);
            using var half = device.Allocate(DType.F16, cout, cin, 3, 3);
            device.Copy(wide, half);
            using var back = device.Allocate(cout, cin, 3, 3);
            device.Copy(half, back);
            int ho = (h + 2 * pad - 3) / stride + 1, wo = (w + 2 * pad - 3) / stride + 1;
            using var tx = device.Upload(x, batch, cin, h, w);
            using var tb = device.Upload(bias, cout);
            using var y = device.Allocate(batch, cout, ho, wo);
            device.Conv2d(tx, half, tb, y, stride, pad);
            var expected = Reference.Conv2d(x, back.ToArray(), bias, batch, cin, h, w, cout, 3, 3, stride, pad);
            Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4),
                $"{device.ConvAlgorithm}, f16 weights: batch {batch}, {cin}->{cout} at {h}x{w}, stride {stride}, padding {pad}");
        }
    }

    [Test]
    public void WeightBoundShapesMatchNaive([Values("Direct256", "Direct512")] string algorithm, [Values(1, 2)] int threads,
        [Values(DType.F32, DType.F16)] DType weights)
    {
        // Few positions and over 2^20 weights: jobs split the output channels before the rows (the last 4-channel tile
        // partial); at 12x12 a job has several tiles of positions and an output-channel tile's weights (180 channels x 9
        // taps x 4) outgrow half of L1, so output-channel tiles run outermost. F16 weights are packed straight from the
        // half tensor, float32 ones read in place.
        var device = Device(algorithm, threads);
        foreach (var (batch, cin, h, w, cout) in new[] { (2, 120, 5, 6, 1001), (1, 180, 12, 12, 650) })
        {
            var rng = new Random(400 + threads + cin);
            var x = Reference.Random(rng, batch * cin * h * w);
            var bias = Reference.Random(rng, cout);
            using var tw32 = device.Upload(Reference.Random(rng, cout * cin * 9), cout, cin, 3, 3);
            using var tw16 = weights == DType.F16 ? device.Convert(tw32, DType.F16) : null;
            var tw = tw16 ?? tw32;
            using var tx = device.Upload(x, batch, cin, h, w);
            using var tb = device.Upload(bias, cout);
            using var y = device.Allocate(batch, cout, h, w);
            device.Conv2d(tx, tw, tb, y, 1, 1);
            var expected = Reference.Conv2d(x, tw.ToArray(), bias, batch, cin, h, w, cout, 3, 3, 1, 1);
            Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-4),
                $"{algorithm}, {threads} threads, {weights} weights: batch {batch}, {cin}->{cout} at {h}x{w}");
        }
    }

    [Test]
    public void FewPositionsStackTheBatch([Values("Direct256", "Direct512")] string algorithm, [Values(1, 2)] int threads,
        [Values(DType.F32, DType.F16)] DType weights)
    {
        // Few output positions: the images of the batch share one band and each weight serves all of them. Odd channel
        // counts (partial 4-channel tiles), more input channels than one block (181 > 170 at 3x3), more output tiles than
        // one chunk of sums (90 at 16x16, batch 3), stride 2, images tiled one by one (8x8, 16x16) and stacked (3x3 at
        // batch 5). Each image of a batch must also equal that image convolved alone, bit for bit: the route sums every
        // output in the same order whatever the batch.
        var device = Device(algorithm, threads);
        foreach (var (batch, cin, h, w, cout, stride) in new[]
            { (1, 181, 8, 8, 91, 1), (3, 181, 16, 16, 90, 1), (3, 67, 16, 16, 45, 2), (2, 33, 8, 8, 13, 2), (5, 17, 3, 3, 7, 1), (3, 9, 5, 7, 6, 1) })
        {
            var rng = new Random(500 + threads + cin + h);
            var x = Reference.Random(rng, batch * cin * h * w);
            var bias = Reference.Random(rng, cout);
            using var tw32 = device.Upload(Reference.Random(rng, cout * cin * 9), cout, cin, 3, 3);
            using var tw16 = weights == DType.F16 ? device.Convert(tw32, DType.F16) : null;
            var tw = tw16 ?? tw32;
            int ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1, outSize = cout * ho * wo;
            using var tx = device.Upload(x, batch, cin, h, w);
            using var tb = device.Upload(bias, cout);
            using var y = device.Allocate(batch, cout, ho, wo);
            device.Conv2d(tx, tw, tb, y, stride, 1);
            var got = y.ToArray();
            var expected = Reference.Conv2d(x, tw.ToArray(), bias, batch, cin, h, w, cout, 3, 3, stride, 1);
            string name = $"{algorithm}, {threads} threads, {weights} weights: batch {batch}, {cin}->{cout} at {h}x{w}, stride {stride}";
            Assert.That(Reference.Compare(got, expected), Is.LessThanOrEqualTo(1e-4), name);
            for (int n = 0; n < batch; n++)
            {
                using var one = device.Upload(x.AsSpan(n * cin * h * w, cin * h * w).ToArray(), 1, cin, h, w);
                using var alone = device.Allocate(1, cout, ho, wo);
                device.Conv2d(one, tw, tb, alone, stride, 1);
                Assert.That(alone.ToArray(), Is.EqualTo(got.AsSpan(n * outSize, outSize).ToArray()), $"{name}: image {n} alone");
            }
        }
    }

    [Test]
    public void WideImageUsesSeveralBands([ValueSource(nameof(Algorithms))] string algorithm, [Values(1, 2)] int stride)
    {
        // 130 channels x 300 columns: the band budget holds about 6 input rows, so the 70 output rows (35 at
        // stride 2) take many bands, each copying its halo rows again.
        var device = Device(algorithm, threads: 2);
        Check(device, 8, 1, 130, 70, 300, 7, 3, 3, stride, 1, withBias: true);
    }

    [Test]
    public void AutoPicksByShape()
    {
        var device = new CpuDevice();
        var direct = DirectConv.Supports512 ? ConvAlgorithm.Direct512 : DirectConv.Supports256 ? ConvAlgorithm.Direct256 : ConvAlgorithm.Gemm;
        Assert.Multiple(() =>
        {
            Assert.That(device.ChooseConv(28 * 28, 32, 3, 3, 1, 1), Is.EqualTo(direct), "3x3 stride 1");
            Assert.That(device.ChooseConv(28 * 28, 32, 3, 3, 2, 1), Is.EqualTo(direct), "3x3 stride 2");
            Assert.That(device.ChooseConv(28 * 28, 32, 4, 4, 4, 0), Is.EqualTo(ConvAlgorithm.Gemm), "patch embedding, stride 4");
            Assert.That(device.ChooseConv(28 * 28, 32, 1, 1, 1, 0), Is.EqualTo(direct), "1x1 to few channels");
            Assert.That(device.ChooseConv(64 * 64, 320, 1, 1, 1, 0), Is.EqualTo(ConvAlgorithm.Gemm), "1x1 to many channels");
        });
    }
}
