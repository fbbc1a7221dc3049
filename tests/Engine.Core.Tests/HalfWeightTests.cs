namespace Engine.Core.Tests;

/// <summary>
/// Half-precision weight storage: GEMM's b operand (Linear weights) and convolution weights stored as
/// F16 or BF16 give the float32 result of the rounded weights, on every device (ILGPU kernels widen
/// them as they stage tiles; the CPU device's GEMM packers widen them panel by panel, its direct convolution
/// kernels read a widened copy).
/// </summary>
[TestFixture]
public class HalfWeightTests
{
    private static readonly DType[] HalfTypes = [DType.F16, DType.BF16];

    /// <summary>Stores <paramref name="values"/> as <paramref name="dtype"/> and returns that tensor and the rounded values.</summary>
    private static (Tensor Stored, float[] Rounded) Store(Device device, float[] values, DType dtype, params int[] shape)
    {
        using var wide = device.Upload(values, shape);
        var stored = device.Allocate(dtype, shape);
        device.Copy(wide, stored);
        using var back = device.Allocate(shape);
        device.Copy(stored, back);
        var rounded = back.ToArray();
        Assert.That(rounded.Where((v, i) => v != values[i]).Count(), Is.GreaterThan(values.Length / 2), $"{dtype} storage rounds the weights");
        return (stored, rounded);
    }

    [Test]
    public void MatMulWithHalfB([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [ValueSource(nameof(HalfTypes))] DType dtype, [Values(false, true)] bool transposeB)
    {
        var device = TestDevices.Get(kind);
        const int batch = 2, m = 19, n = 37, k = 45;
        var rng = new Random(3);
        var a = Reference.Random(rng, batch * m * k);
        var bias = Reference.Random(rng, n);
        var (b, rounded) = Store(device, Reference.Random(rng, k * n), dtype, transposeB ? [n, k] : [k, n]);
        using (b)
        {
            using var ta = device.Upload(a, batch, m, k);
            using var tbias = device.Upload(bias, n);
            using var output = device.Allocate(batch, m, n);
            device.MatMul(ta, b, output, transposeB: transposeB, bias: tbias, activation: Activation.SiLU);
            var expected = Reference.MatMul(a, rounded, batch, 1, m, n, k, false, transposeB, bias, Activation.SiLU, 1f);
            Assert.That(Reference.Compare(output.ToArray(), expected), Is.LessThanOrEqualTo(1e-5), $"{dtype} b, transposeB {transposeB}");
        }
    }

    /// <summary>A weight of 770,000 values (once widened in parallel chunks of 2^18 on the CPU, now packed panel by panel): every value lands in place.</summary>
    [Test]
    public void LargeF16WeightIsWidenedWhole([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        const int rows = 6, inF = 700, outF = 1100; // 770,000 weights: two full chunks and a partial one
        var rng = new Random(12);
        var x = Reference.Random(rng, rows * inF);
        var (w, rounded) = Store(device, Reference.Random(rng, outF * inF), DType.F16, outF, inF);
        using (w)
        {
            using var tx = device.Upload(x, rows, inF);
            using var output = device.Allocate(rows, outF);
            device.Linear(tx, w, null, output);
            var expected = Reference.MatMul(x, rounded, 1, 1, rows, outF, inF, false, true, null, Activation.None, 1f);
            Assert.That(Reference.Compare(output.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
        }
    }

    [Test]
    public void LinearWithHalfWeight([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind, [ValueSource(nameof(HalfTypes))] DType dtype)
    {
        var device = TestDevices.Get(kind);
        const int rows = 5, inF = 24, outF = 33;
        var rng = new Random(4);
        var x = Reference.Random(rng, rows * inF);
        var (w, rounded) = Store(device, Reference.Random(rng, outF * inF), dtype, outF, inF);
        using (w)
        {
            using var tx = device.Upload(x, rows, inF);
            using var output = device.Allocate(rows, outF);
            device.Linear(tx, w, null, output);
            var expected = Reference.MatMul(x, rounded, 1, 1, rows, outF, inF, false, true, null, Activation.None, 1f);
            Assert.That(Reference.Compare(output.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
            // A row slice of the weight (Linear chunks) keeps its element offset in half storage.
            using var half = device.Allocate(rows, 11);
            device.Linear(tx, w.Slice(22, 11), null, half);
            var chunk = half.ToArray();
            var all = output.ToArray();
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < 11; j++)
                    Assert.That(chunk[r * 11 + j], Is.EqualTo(all[r * outF + 22 + j]).Within(1e-5f), $"row {r} feature {22 + j}");
        }
    }

    [Test]
    public void Conv2dWithHalfWeight([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind,
        [ValueSource(nameof(HalfTypes))] DType dtype, [Values(1, 2)] int stride)
    {
        var device = TestDevices.Get(kind);
        const int batch = 2, cin = 5, h = 11, wd = 9, cout = 7, kh = 3, kw = 3, pad = 1;
        var rng = new Random(5);
        var x = Reference.Random(rng, batch * cin * h * wd);
        var bias = Reference.Random(rng, cout);
        var (w, rounded) = Store(device, Reference.Random(rng, cout * cin * kh * kw), dtype, cout, cin, kh, kw);
        using (w)
        {
            int ho = (h + 2 * pad - kh) / stride + 1, wo = (wd + 2 * pad - kw) / stride + 1;
            using var tx = device.Upload(x, batch, cin, h, wd);
            using var tb = device.Upload(bias, cout);
            using var output = device.Allocate(batch, cout, ho, wo);
            device.Conv2d(tx, w, tb, output, stride, pad);
            var expected = Reference.Conv2d(x, rounded, bias, batch, cin, h, wd, cout, kh, kw, stride, pad);
            Assert.That(Reference.Compare(output.ToArray(), expected), Is.LessThanOrEqualTo(1e-5), $"{dtype} weights, stride {stride}");
        }
    }

    [Test]
    public void HalfOperandsOtherThanWeightsAreRejected([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        // Devices with half activations (ILGPU) take these operands: HalfActivationTests checks them there.
        if (device.SupportsHalfActivations) Assert.Ignore($"{kind} computes with half activations (HalfActivationTests).");
        using var a = device.Allocate(DType.F16, 4, 4);
        using var b = device.Allocate(4, 4);
        using var o = device.Allocate(4, 4);
        var e = Assert.Throws<ArgumentException>(() => device.MatMul(a, b, o));
        Assert.That(e!.Message, Does.Contain("'a'").And.Contain("F32"));
        using var x = device.Allocate(DType.BF16, 1, 4, 3, 3);
        using var w = device.Allocate(2, 4, 1, 1);
        using var y = device.Allocate(1, 2, 3, 3);
        e = Assert.Throws<ArgumentException>(() => device.Conv2d(x, w, null, y));
        Assert.That(e!.Message, Does.Contain("'x'"));
    }
}
