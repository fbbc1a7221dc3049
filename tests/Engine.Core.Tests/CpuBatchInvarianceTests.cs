using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU device's batch-invariance guarantee: every op computes each sample of a batch bit for bit as it
/// computes that sample alone, at any batch size and thread count (docs/ARCHITECTURE.md, "Determinism").
/// Each case runs an op on six samples as one batch, in batches of 1, 2 and 3 and with 1, 2, 3 and 8 threads,
/// and compares every sample's output bitwise with the sample alone on one thread. The shapes are those of
/// the shipped fmnist networks and SD-class ones at small sizes, chosen so that the batch crosses the size
/// rules of the kernels (few-row dot products, partial GEMM tiles, the 1x1 direct kernel's and Winograd's
/// position thresholds, vector tails of element-wise ops).
/// </summary>
public class CpuBatchInvarianceTests
{
    private const int Samples = 6;
    private static readonly int[] ThreadCounts = [1, 2, 3, 8];
    private static readonly int[] BatchSizes = [1, 2, 3, 6];

    /// <summary>One op on a batch: batched inputs (shape [batch, ...]) and shared parameters, on a device.</summary>
    private delegate void BatchedOp(Device device, Tensor[] inputs, Tensor[] parameters, Tensor output);

    private static readonly Dictionary<int, CpuDevice> Devices = [];

    private static CpuDevice Device(int threads)
    {
        lock (Devices)
            return Devices.TryGetValue(threads, out var d) ? d : Devices[threads] = new CpuDevice(threads);
    }

    /// <summary>
    /// Runs <paramref name="op"/> on every split of <see cref="Samples"/> samples and checks each sample's output
    /// bitwise against the sample alone on one thread.
    /// </summary>
    private static void Check(string what, int[][] inputShapes, int[][] parameterShapes, int[] outputShape, BatchedOp op,
        DType parameterType = DType.F32, int seed = 1)
    {
        var rng = new Random(seed);
        var inputs = inputShapes.Select(s => Reference.Random(rng, Samples * Length(s))).ToArray();
        var parameters = parameterShapes.Select(s => Reference.Random(rng, Length(s), 0.5f)).ToArray();
        int outLength = Length(outputShape);
        float[]? expected = null;
        foreach (int threads in ThreadCounts)
            foreach (int batch in BatchSizes)
            {
                var device = Device(threads);
                var got = new float[Samples * outLength];
                var ps = parameters.Select((p, i) => Upload(device, p, parameterShapes[i], parameterType)).ToArray();
                try
                {
                    for (int s0 = 0; s0 < Samples; s0 += batch)
                    {
                        var xs = inputs.Select((x, i) => device.Upload(x.AsSpan(s0 * Length(inputShapes[i]), batch * Length(inputShapes[i])),
                            [batch, .. inputShapes[i]])).ToArray();
                        using var output = device.Allocate([batch, .. outputShape]);
                        op(device, xs, ps, output);
                        output.ToArray().CopyTo(got, s0 * outLength);
                        foreach (var x in xs) x.Dispose();
                    }
                }
                finally { foreach (var p in ps) p.Dispose(); }
                if (expected is null) { expected = got; continue; }
                for (int i = 0; i < got.Length; i++)
                    if (BitConverter.SingleToInt32Bits(got[i]) != BitConverter.SingleToInt32Bits(expected[i]))
                        Assert.Fail($"{what}: sample {i / outLength}, element {i % outLength} is {got[i]:R} in batches of {batch} on {threads} threads, " +
                            $"{expected[i]:R} alone on 1 thread");
            }
    }

    private static int Length(int[] shape) => shape.Aggregate(1, (a, b) => a * b);

    private static Tensor Upload(Device device, float[] data, int[] shape, DType type)
    {
        var t = device.Upload(data, shape);
        if (type == DType.F32 || shape.Length < 2) return t;
        var converted = device.Convert(t, type);
        t.Dispose();
        return converted;
    }

    // (rows per sample, in, out, activation): the fmnist networks' embeddings (one row per sample) and token
    // projections (49 rows), K past one depth slice with a bias (the edge tiles' epilogue), an odd width.
    public static IEnumerable<TestCaseData> LinearCases()
    {
        foreach (var type in new[] { DType.F32, DType.F16 })
        {
            yield return new TestCaseData(1, 32, 128, Activation.SiLU, type);
            yield return new TestCaseData(1, 128, 128, Activation.None, type);
            yield return new TestCaseData(1, 256, 768, Activation.None, type);
            yield return new TestCaseData(49, 64, 64, Activation.None, type);
            yield return new TestCaseData(49, 512, 128, Activation.None, type);
            yield return new TestCaseData(49, 128, 512, Activation.GeluTanh, type);
            yield return new TestCaseData(7, 300, 45, Activation.GeluErf, type);
        }
    }

    [TestCaseSource(nameof(LinearCases))]
    public void Linear(int rows, int inFeatures, int outFeatures, Activation activation, DType weightType) =>
        Check($"Linear {rows}x{inFeatures}->{outFeatures} {activation} {weightType}", [[rows, inFeatures]], [[outFeatures, inFeatures], [outFeatures]], [rows, outFeatures],
            (d, x, p, o) => d.Linear(x[0], p[0], p[1], o, activation), weightType);

    [TestCase(1, 64), TestCase(49, 64), TestCase(77, 40)]
    public void LinearGeglu(int rows, int d) =>
        Check($"LinearGeglu {rows}x{d}", [[rows, d]], [[4 * d, d], [4 * d]], [rows, 2 * d], (dev, x, p, o) => dev.LinearGeglu(x[0], p[0], p[1], o));

    // (channels in, out, size, kernel, stride, padding): the fmnist UNet's convolutions, a 1x1 whose batch
    // crosses the direct kernel's position threshold, and 3x3 shapes on both sides of Winograd's.
    [TestCase(1, 32, 28, 3, 1, 1), TestCase(32, 32, 28, 3, 2, 1), TestCase(64, 64, 7, 3, 1, 1), TestCase(128, 64, 14, 3, 1, 1)]
    [TestCase(128, 64, 7, 1, 1, 0), TestCase(96, 32, 28, 1, 1, 0), TestCase(1, 128, 28, 4, 4, 0)]
    [TestCase(128, 128, 8, 3, 1, 1), TestCase(128, 128, 16, 3, 1, 1), TestCase(160, 128, 12, 3, 1, 1)]
    public void Conv2d(int cin, int cout, int size, int k, int stride, int padding)
    {
        int o = (size + 2 * padding - k) / stride + 1;
        Check($"Conv2d {cin}->{cout} {size}x{size} k{k} s{stride}", [[cin, size, size]], [[cout, cin, k, k], [cout]], [cout, o, o],
            (d, x, p, y) => d.Conv2d(x[0], p[0], p[1], y, stride, padding));
    }

    [TestCase(32, 784, 8, true), TestCase(64, 49, 8, false), TestCase(128, 196, 8, true), TestCase(320, 64, 32, true)]
    public void GroupNorm(int channels, int spatial, int groups, bool silu) =>
        Check($"GroupNorm {channels}x{spatial} g{groups}", [[channels, spatial]], [[channels], [channels]], [channels, spatial],
            (d, x, p, o) => d.GroupNorm(x[0], p[0], p[1], o, groups, 1e-5f, silu));

    [TestCase(49, 128), TestCase(77, 40)]
    public void LayerNormAndSoftmax(int rows, int d)
    {
        Check($"LayerNorm {rows}x{d}", [[rows, d]], [[d], [d]], [rows, d], (dev, x, p, o) => dev.LayerNorm(x[0], p[0], p[1], o, 1e-5f));
        Check($"Softmax {rows}x{d}", [[rows, d]], [], [rows, d], (dev, x, p, o) => dev.Softmax(x[0], o));
    }

    [TestCase(49, 49, 4, 16), TestCase(49, 49, 4, 32), TestCase(100, 77, 2, 40), TestCase(600, 600, 1, 40)]
    public void Attention(int lq, int lk, int heads, int d) =>
        Check($"Attention L{lq} Lk{lk} h{heads} d{d}", [[lq, heads * d], [lk, heads * d], [lk, heads * d]], [], [lq, heads * d],
            (dev, x, p, o) => dev.Attention(x[0], x[1], x[2], o, heads, 1f / MathF.Sqrt(d)));

    // Per-sample lengths that are not a multiple of the vector width: a batch moves samples across the tails.
    [TestCase(11), TestCase(128), TestCase(5)]
    public void ElementWise(int length)
    {
        foreach (var a in new[] { Activation.SiLU, Activation.GeluTanh, Activation.GeluErf, Activation.Relu })
            Check($"Activate {a} x{length}", [[length]], [], [length], (d, x, p, o) => d.Activate(x[0], o, a));
        Check($"Geglu x{length}", [[2 * length]], [], [length], (d, x, p, o) => d.Geglu(x[0], o));
        Check($"Add x{length}", [[length], [length]], [], [length], (d, x, p, o) => d.Add(x[0], x[1], o));
        Check($"Affine x{length}", [[length]], [], [length], (d, x, p, o) => d.Affine(x[0], o, 0.3f, -1.7f));
        Check($"LinearCombination x{length}", [[length], [length]], [], [length],
            (d, x, p, o) => d.LinearCombination(o, [x[0], x[1]], [0.37f, -1.3f]));
    }

    [Test]
    public void ModulateAndGatedAdd()
    {
        Check("Modulate", [[49, 128], [128], [128]], [], [49, 128], (d, x, p, o) => d.Modulate(x[0], x[1], x[2], o));
        Check("GatedAdd", [[49, 128], [49, 128], [128]], [], [49, 128], (d, x, p, o) => d.GatedAdd(x[0], x[1], x[2], o));
    }

    [Test]
    public void BatchedMatMul()
    {
        Check("MatMul per-sample 49x49x16", [[49, 16], [16, 49]], [], [49, 49], (d, x, p, o) => d.MatMul(x[0], x[1], o));
        Check("MatMul shared 11x128", [[1, 11]], [[11, 128]], [1, 128], (d, x, p, o) => d.MatMul(x[0], p[0], o));
    }
}
