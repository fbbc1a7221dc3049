using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU GEMM's packers at sizes that cross their 8 x 8 register transposes and leave remainders (odd M, N, K,
/// partial panels), every stride layout, alpha, bias per row or column, activation and accumulation, against a
/// float64 reference; and F16 / BF16 operands, which the packers widen panel by panel, against the same product
/// on the widened float32 values (bitwise: the kernel then sees the same numbers).
/// </summary>
[TestFixture]
public unsafe class GemmPackingTests
{
    private static readonly DType[] Types = [DType.F32, DType.F16, DType.BF16];

    /// <summary>Values of <paramref name="type"/> as float32 (rounded) and their raw storage.</summary>
    private static (float[] Rounded, ushort[] Bits) Round(float[] values, DType type)
    {
        var bits = new ushort[values.Length];
        var rounded = new float[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            if (type == DType.F16) { var h = (Half)values[i]; bits[i] = BitConverter.HalfToUInt16Bits(h); rounded[i] = (float)h; }
            else if (type == DType.BF16) { bits[i] = DTypeExtensions.SingleToBFloat16(values[i]); rounded[i] = DTypeExtensions.BFloat16ToSingle(bits[i]); }
            else rounded[i] = values[i];
        }
        return (rounded, bits);
    }

    /// <summary>
    /// Layouts of an operand stored [rows, depth] in a buffer twice as wide as needed: rows contiguous in depth
    /// (stride 1 along depth), transposed (stride 1 along rows), or neither (a strided view, every other element).
    /// </summary>
    public enum Layout { DepthContiguous, RowContiguous, Strided }

    private static (int Rs, int Cs, int Length) Strides(Layout layout, int rows, int depth) => layout switch
    {
        Layout.DepthContiguous => (depth, 1, rows * depth),
        Layout.RowContiguous => (1, rows, rows * depth),
        _ => (2 * depth, 2, 2 * rows * depth),
    };

    private static void Check(int m, int n, int k, Layout aLayout, Layout bLayout, DType typeA, DType typeB, bool rowBias,
        Activation activation, bool accumulate, bool parallel, int seed, float alpha = 0.75f)
    {
        var rng = new Random(seed);
        var (rsA, csA, lenA) = Strides(aLayout, m, k);
        // B is stored [n, k] in the same scheme, so op(B)(p, j) = B[p * RsB + j * CsB] with the roles swapped.
        var (csB, rsB, lenB) = Strides(bLayout, n, k);
        var (a, aBits) = Round(Reference.Random(rng, lenA), typeA);
        var (b, bBits) = Round(Reference.Random(rng, lenB), typeB);
        var bias = Reference.Random(rng, rowBias ? m : n);
        var c0 = Reference.Random(rng, m * n);
        var expected = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)a[i * rsA + p * csA] * b[p * rsB + j * csB];
                s = alpha * s + bias[rowBias ? i : j];
                s = Reference.Activate(s, activation);
                expected[i * n + j] = accumulate && activation == Activation.None ? s + c0[i * n + j] : s;
            }
        var c = (float[])c0.Clone();
        var wide = (float[])c0.Clone();
        fixed (float* pa = a, pb = b, pc = c, pw = wide, pbias = bias)
        fixed (ushort* ha = aBits, hb = bBits)
        {
            var g = new GemmProblem
            {
                M = m, N = n, K = k,
                A = typeA == DType.F32 ? (nint)pa : (nint)ha, TypeA = typeA, RsA = rsA, CsA = csA,
                B = typeB == DType.F32 ? (nint)pb : (nint)hb, TypeB = typeB, RsB = rsB, CsB = csB,
                C = (nint)pc, Ldc = n, Alpha = alpha, Bias = (nint)pbias, BiasPerRow = rowBias, Activation = activation,
                Accumulate = accumulate && activation == Activation.None,
            };
            var options = parallel ? new ParallelOptions { MaxDegreeOfParallelism = 2 } : null;
            Gemm.Run(g, options);
            // The same product on the widened values, as float32 operands.
            Gemm.Run(g with { A = (nint)pa, TypeA = DType.F32, B = (nint)pb, TypeB = DType.F32, C = (nint)pw }, options);
        }
        string what = $"{m}x{n}x{k} A {aLayout} {typeA}, B {bLayout} {typeB}, row bias {rowBias}, {activation}, accumulate {accumulate}";
        Assert.That(Reference.Compare(c, expected), Is.LessThanOrEqualTo(1e-4), what);
        Assert.That(c, Is.EqualTo(wide), $"{what}: half operands packed directly differ from the widened float32 ones");
    }

    [Test]
    public void LayoutsAndTypes([Values] Layout aLayout, [Values] Layout bLayout, [ValueSource(nameof(Types))] DType typeA,
        [ValueSource(nameof(Types))] DType typeB)
    {
        // 37 rows: four full 8-row panels and a partial one; 70 columns: two full 32-wide panels and a partial one;
        // depth 67: eight 8-deep transposes and a remainder of 3.
        Check(37, 70, 67, aLayout, bLayout, typeA, typeB, rowBias: false, Activation.None, accumulate: false, parallel: false, seed: 1);
    }

    [Test]
    public void EpiloguesOnTransposingPackers([Values] bool rowBias, [Values(Activation.None, Activation.SiLU, Activation.GeluTanh)] Activation activation,
        [Values] bool accumulate, [Values] bool parallel)
    {
        // Past one depth slice (K 300 > 128) and wide enough for several parallel macro tiles.
        Check(83, 300, 300, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, DType.F16, rowBias, activation, accumulate, parallel, seed: 2);
    }

    [Test]
    public void OddSizes([Values(1, 5, 8, 9, 17)] int m, [Values(1, 31, 32, 33)] int n, [Values(1, 7, 8, 9, 130)] int k)
    {
        Check(m, n, k, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, DType.F32, rowBias: true, Activation.None, accumulate: false, parallel: false, seed: m * 1000 + n * 10 + k);
        Check(m, n, k, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, DType.BF16, rowBias: false, Activation.None, accumulate: true, parallel: false, seed: m + n + k);
    }

    /// <summary>
    /// Products with many macro tiles along one side, where each job packs its own rows of A (tall: M 261 >= N) or
    /// columns of B (wide: N 1000 > M) next to the shared other operand; partial last tiles, bias, both thread modes.
    /// </summary>
    [Test]
    public void LocalPackingSchedules([Values] bool tall, [Values] bool parallel, [Values(DType.F32, DType.F16)] DType weightType)
    {
        if (tall) Check(261, 70, 131, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, weightType, rowBias: false, Activation.SiLU, accumulate: false, parallel, seed: 3);
        else Check(21, 1000, 45, Layout.DepthContiguous, Layout.RowContiguous, weightType, DType.F32, rowBias: true, Activation.None, accumulate: true, parallel, seed: 4);
    }

    /// <summary>
    /// Job grids split so that two threads get equal work: the general schedule with 20 x 7 panels (3 x 1 macro tiles,
    /// split to 3 x 2), 37 row panels of a tall product in 6 parts (was 5), 38 column panels of a wide one in 6 parts
    /// (was 5), an N of 320 that fits one packed block without being a multiple of the macro tile, and a depth long enough
    /// that B is packed in two column blocks (N K over the packed-B budget); serial and on two threads.
    /// </summary>
    [TestCase(154, 200, 96)]
    [TestCase(296, 70, 40)]
    [TestCase(24, 1200, 40)]
    [TestCase(300, 320, 72)]
    [TestCase(70, 700, 6000)]
    public void BalancedJobGrids(int m, int n, int k)
    {
        foreach (bool parallel in new[] { false, true })
            Check(m, n, k, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, DType.F16, rowBias: false, Activation.None,
                accumulate: false, parallel, seed: m + n + k);
    }

    /// <summary>
    /// Tall products whose float32 A rows are contiguous in depth with alpha 1 (a Linear layer's activations): the AVX-512
    /// kernel reads A from its rows instead of packed panels. A last panel of 5 rows (the kernel re-reads row 0 for the
    /// missing ones), depth past two 128-deep slices with a remainder, bias per column or row, activation and accumulation,
    /// B in both layouts; against the float64 reference and, for F16 weights, bitwise against the widened float32 weight.
    /// </summary>
    [Test]
    public void TallProductReadingRowsOfA([Values] bool parallel, [Values(Activation.None, Activation.SiLU)] Activation activation,
        [Values] bool accumulate, [Values(DType.F32, DType.F16)] DType weightType)
    {
        Check(261, 70, 300, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, weightType, rowBias: false, activation,
            accumulate, parallel, seed: 5, alpha: 1f);
        Check(301, 40, 45, Layout.DepthContiguous, Layout.RowContiguous, DType.F32, weightType, rowBias: true, activation,
            accumulate, parallel, seed: 6, alpha: 1f);
    }

    /// <summary>
    /// Half-precision operands contiguous in depth over more than one depth slice: a depth of 300 (two full 128-deep
    /// slices and a remainder of 44, itself not a multiple of the 8-deep transposes) for A and B, F16 and BF16, partial
    /// panels; and a tall float32 A whose rows lie 512 floats apart with alpha 1, which the packed panels read, not the rows path.
    /// </summary>
    [Test]
    public void HalfPanelsPastOneDepthSlice([ValueSource(nameof(Types))] DType type, [Values] bool parallel)
    {
        Check(45, 70, 300, Layout.DepthContiguous, Layout.DepthContiguous, type, type, rowBias: false, Activation.None,
            accumulate: false, parallel, seed: 7);
        Check(261, 40, 512, Layout.DepthContiguous, Layout.DepthContiguous, DType.F32, type, rowBias: false, Activation.None,
            accumulate: false, parallel, seed: 8, alpha: 1f);
    }

    /// <summary>Linear with a half weight of many rows (the packed path, not the few-row dot products): same bits as the widened float32 weight.</summary>
    [Test]
    public void LinearHalfWeightMatchesWidenedWeight([Values(DType.F16, DType.BF16)] DType dtype, [Values(3, 45)] int rows)
    {
        using var device = new CpuDevice(2);
        const int inF = 131, outF = 70;
        var rng = new Random(9);
        var x = Reference.Random(rng, rows * inF);
        var bias = Reference.Random(rng, outF);
        using var w32 = device.Upload(Reference.Random(rng, outF * inF), outF, inF);
        using var w = device.Convert(w32, dtype);
        using var widened = device.Convert(w, DType.F32);
        using var tx = device.Upload(x, rows, inF);
        using var tb = device.Upload(bias, outF);
        using var y = device.Allocate(rows, outF);
        using var yWide = device.Allocate(rows, outF);
        device.Linear(tx, w, tb, y, Activation.GeluTanh);
        device.Linear(tx, widened, tb, yWide, Activation.GeluTanh);
        var expected = Reference.MatMul(x, widened.ToArray(), 1, 1, rows, outF, inF, false, true, bias, Activation.GeluTanh, 1f);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
        Assert.That(y.ToArray(), Is.EqualTo(yWide.ToArray()));
    }

    /// <summary>Convolutions on the GEMM path (1x1 as a plain product, 3x3 through packed columns) with half weights.</summary>
    [Test]
    public void GemmConvolutionWithHalfWeight([Values(DType.F16, DType.BF16)] DType dtype, [Values(1, 3)] int kernel)
    {
        using var device = new CpuDevice(2) { ConvAlgorithm = ConvAlgorithm.Gemm };
        const int batch = 2, cin = 19, h = 9, wd = 11, cout = 21;
        int pad = kernel / 2;
        var rng = new Random(10 + kernel);
        var x = Reference.Random(rng, batch * cin * h * wd);
        var bias = Reference.Random(rng, cout);
        using var w32 = device.Upload(Reference.Random(rng, cout * cin * kernel * kernel), cout, cin, kernel, kernel);
        using var w = device.Convert(w32, dtype);
        using var widened = device.Convert(w, DType.F32);
        using var tx = device.Upload(x, batch, cin, h, wd);
        using var tb = device.Upload(bias, cout);
        using var y = device.Allocate(batch, cout, h, wd);
        using var yWide = device.Allocate(batch, cout, h, wd);
        device.Conv2d(tx, w, tb, y, 1, pad);
        device.Conv2d(tx, widened, tb, yWide, 1, pad);
        var expected = Reference.Conv2d(x, widened.ToArray(), bias, batch, cin, h, wd, cout, kernel, kernel, 1, pad);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
        Assert.That(y.ToArray(), Is.EqualTo(yWide.ToArray()));
    }
}
