using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// <see cref="Device.LinearGeglu"/> against a float64 reference of the projection followed by h * gelu_erf(g): on the
/// CPU device (one and two threads) the GEGLU fused into the GEMM's row blocks, with rows in one and several
/// blocks and partial tiles, gate widths with and without 16- and 8-lane tails and across several column tiles,
/// depths over one K slice, float32 and f16 weights, with and without bias; on every test device the default
/// composition; and on the CPU the fused values against the separate Linear and Geglu.
/// </summary>
public class LinearGegluTests
{
    private static readonly int[] Threads = [1, 2];

    private static double[] Expected(float[] x, float[] w, float[]? bias, int rows, int d, int k)
    {
        var h = Reference.MatMul(x, w, 1, 1, rows, 2 * d, k, false, true, bias, Activation.None, 1f);
        var expected = new double[rows * d];
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < d; j++)
                expected[r * d + j] = h[r * 2 * d + j] * Reference.Activate(h[r * 2 * d + d + j], Activation.GeluErf);
        return expected;
    }

    [Test]
    public void FusedOnCpuMatchesReference([ValueSource(nameof(Threads))] int threads, [Values(1, 8, 70, 130)] int rows,
        [Values(9, 40, 300)] int d, [Values(33, 150)] int k, [Values] bool bias, [Values(DType.F32, DType.F16)] DType weightType)
    {
        using var device = new CpuDevice(threads);
        var rng = new Random(rows * 31 + d * 7 + k);
        var x = Reference.Random(rng, rows * k, 2f);
        using var wide = device.Upload(Reference.Random(rng, 2 * d * k, 0.3f), 2 * d, k);
        using var tw = device.Allocate(weightType, 2 * d, k);
        device.Copy(wide, tw);
        var w = device.Download(tw);
        var b = bias ? Reference.Random(rng, 2 * d) : null;
        using var tx = device.Upload(x, rows, k);
        using var tb = b is null ? null : device.Upload(b, 2 * d);
        using var y = device.Allocate(rows, d);
        device.LinearGeglu(tx, tw, tb, y);
        Assert.That(Reference.Compare(y.ToArray(), Expected(x, w, b, rows, d, k)), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void EveryDeviceMatchesReference([ValueSource(typeof(TestDevices), nameof(TestDevices.Kinds))] string kind)
    {
        var device = TestDevices.Get(kind);
        const int batch = 2, tokens = 12, d = 24, k = 20;
        var rng = new Random(3);
        var x = Reference.Random(rng, batch * tokens * k, 2f);
        var w = Reference.Random(rng, 2 * d * k, 0.3f);
        var b = Reference.Random(rng, 2 * d);
        using var tx = device.Upload(x, batch, tokens, k);
        using var tw = device.Upload(w, 2 * d, k);
        using var tb = device.Upload(b, 2 * d);
        using var y = device.Allocate(batch, tokens, d);
        device.LinearGeglu(tx, tw, tb, y);
        Assert.That(Reference.Compare(y.ToArray(), Expected(x, w, b, batch * tokens, d, k)), Is.LessThanOrEqualTo(1e-5));
    }

    [Test]
    public void FusedOnCpuAgreesWithLinearThenGeglu([ValueSource(nameof(Threads))] int threads, [Values(64, 200)] int rows)
    {
        using var device = new CpuDevice(threads);
        const int d = 320, k = 160;
        var rng = new Random(rows);
        using var tx = device.Upload(Reference.Random(rng, rows * k, 2f), rows, k);
        using var tw = device.Upload(Reference.Random(rng, 2 * d * k, 0.3f), 2 * d, k);
        using var tb = device.Upload(Reference.Random(rng, 2 * d), 2 * d);
        using var fused = device.Allocate(rows, d);
        device.LinearGeglu(tx, tw, tb, fused);
        using var h = device.Allocate(rows, 2 * d);
        using var separate = device.Allocate(rows, d);
        device.Linear(tx, tw, tb, h);
        device.Geglu(h, separate);
        var a = fused.ToArray();
        var e = separate.ToArray().Select(v => (double)v).ToArray();
        Assert.That(Reference.Compare(a, e), Is.LessThanOrEqualTo(1e-6));
    }

    [Test]
    public void RejectsMismatchedShapes()
    {
        using var device = new CpuDevice(1);
        using var x = device.Allocate(4, 10);
        using var w = device.Allocate(12, 10);
        using var odd = device.Allocate(11, 10);
        using var y = device.Allocate(4, 6);
        using var narrow = device.Allocate(4, 5);
        using var shortBias = device.Allocate(6);
        Assert.Throws<ArgumentException>(() => device.LinearGeglu(x, odd, null, y));
        Assert.Throws<ArgumentException>(() => device.LinearGeglu(x, w, null, narrow));
        Assert.Throws<ArgumentException>(() => device.LinearGeglu(x, w, shortBias, y));
    }
}
