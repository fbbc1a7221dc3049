using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// Convolutions with F16 / BF16 activations through <see cref="Device.Conv2d"/> on the tensor-core route: on
/// ILGPU's CPU accelerator with <see cref="Engine.Kernels.EmulatedTensorCore"/> (128-thread groups), on CUDA with
/// the PTX where ENGINE_TEST_CUDA=1. Reference: fp64 over the inputs and weights as the kernel sees them (rounded
/// to the activation type), plus the bias. Tolerance: max |out - ref| / max |ref| at most 2e-3 in f16 and 8e-3 in
/// bf16: the output is rounded once (unit roundoff 4.9e-4 and 3.9e-3), and fp32 accumulation over K &lt;= 288
/// adds far less. Sizes are small and odd so that tile edges cut channels, pixels and K.
/// </summary>
[TestFixtureSource(typeof(TensorCoreAccelerators), nameof(TensorCoreAccelerators.Kinds))]
public class TensorCoreConvTests(string kind)
{
    private static readonly Dictionary<string, IlgpuDevice> Devices = new();

    // The 64 x 64 tile (128-thread groups on the CPU accelerator) and, on "wide", the 128 x 128 tile forced (256 threads).
    private IlgpuDevice Target => Get(kind);

    private IlgpuDevice Wide => Get(kind + "-wide");

    private static IlgpuDevice Get(string key)
    {
        lock (Devices)
        {
            if (Devices.TryGetValue(key, out var device)) return device;
            bool wide = key.EndsWith("-wide", StringComparison.Ordinal);
            try { device = key.StartsWith("cuda", StringComparison.Ordinal) ? IlgpuDevice.Create("cuda") : IlgpuDevice.CreateSimulated(warpsPerGroup: wide ? 8 : 4); }
            catch (PlatformNotSupportedException e) { Assert.Ignore($"{key}: {e.Message}"); throw; }
            device.EmulateTensorCoreConv = true;
            device.ForcedLargeConvBlock = wide;
            return Devices[key] = device;
        }
    }

    /// <summary>One convolution: input [n, cin, h, w], cout, square kernel, stride, padding, bias, weight storage.</summary>
    public sealed record Shape(int N, int Cin, int H, int W, int Cout, int Kernel, int Stride, int Padding, bool Bias, DType Weight, DType BiasStorage = DType.F32)
    {
        public int Ho => (H + 2 * Padding - Kernel) / Stride + 1;
        public int Wo => (W + 2 * Padding - Kernel) / Stride + 1;
        public override string ToString() => $"{N}x{Cin}x{H}x{W}->{Cout} k{Kernel} s{Stride} p{Padding}{(Bias ? $" bias {BiasStorage}" : "")} w{Weight}";
    }

    private static readonly Shape Large = new(2, 32, 12, 10, 48, 3, 1, 1, true, DType.F32);
    private static readonly Shape LargeStride2 = new(2, 32, 12, 10, 48, 3, 2, 1, false, DType.F16);
    private static readonly Shape Dense1x1 = new(2, 32, 12, 10, 48, 1, 1, 0, true, DType.F16);    // 120 pixels: the dense cp.async slab
    private static readonly Shape Gathered1x1 = new(1, 16, 7, 9, 24, 1, 1, 0, false, DType.F32);  // 63 pixels: the gathered slab
    private static readonly Shape Odd3x3 = new(1, 16, 9, 7, 40, 3, 1, 1, true, DType.BF16);
    private static readonly Shape OddStride2 = new(1, 24, 7, 9, 16, 3, 2, 1, true, DType.F16, DType.F16);   // a half bias, widened once
    // Cin a multiple of 32 (Large, LargeStride2 and the 1x1 shapes too): K tap-major, two slabs per tap here.
    private static readonly Shape TapMajor64 = new(1, 64, 9, 11, 40, 3, 1, 1, true, DType.F16);
    private static readonly Shape TapMajorStride2 = new(1, 64, 10, 9, 24, 3, 2, 1, false, DType.F32);
    private static readonly Shape TapMajor1x1 = new(1, 32, 7, 9, 24, 1, 1, 0, true, DType.F16);  // 63 pixels: gathered, one tap

    /// <summary>Every shape in f16; in bf16 all but the largest stride-1 case (the emulation is slow), which the others' paths cover.</summary>
    public static IEnumerable<TestCaseData> Eligible()
    {
        foreach (var s in new[] { Large, LargeStride2, Dense1x1, Gathered1x1, Odd3x3, OddStride2, TapMajor64, TapMajorStride2, TapMajor1x1 })
            yield return new TestCaseData(s, DType.F16);
        foreach (var s in new[] { LargeStride2, Dense1x1, Gathered1x1, Odd3x3, OddStride2, TapMajor64 })
            yield return new TestCaseData(s, DType.BF16);
    }

    public static IEnumerable<Shape> Ineligible()
    {
        yield return new(1, 12, 6, 5, 16, 3, 1, 1, true, DType.F32);     // Cin not a multiple of 8
        yield return new(1, 4, 6, 5, 16, 3, 1, 1, false, DType.F16);     // conv_in-like
        yield return new(1, 16, 6, 5, 8, 3, 1, 0, true, DType.F32);      // 3x3 without padding
        yield return new(1, 16, 7, 7, 8, 5, 1, 2, false, DType.F32);     // 5x5
    }

    private static float Round(float v, DType dtype) => dtype switch
    {
        DType.F16 => (float)(System.Half)v,
        DType.BF16 => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v)),
        _ => v,
    };

    private static (float[] X, float[] W, float[]? B) Inputs(Shape s, int seed)
    {
        var rng = new Random(seed);
        return (Reference.Random(rng, s.N * s.Cin * s.H * s.W, 1f), Reference.Random(rng, s.Cout * s.Cin * s.Kernel * s.Kernel, 0.3f),
            s.Bias ? Reference.Random(rng, s.Cout, 0.5f) : null);
    }

    /// <summary>Runs the convolution on the device with <paramref name="dtype"/> activations; returns the output and whether it used the tensor cores.</summary>
    private (float[] Got, double[] Expected, bool Routed) Run(Shape s, DType dtype, IlgpuDevice? on = null)
    {
        var device = on ?? Target;
        var (x, w, b) = Inputs(s, s.Cin * 131 + s.Cout * 7 + s.Kernel * 3 + s.Stride);
        using var w32 = device.Upload(w, s.Cout, s.Cin, s.Kernel, s.Kernel);
        using var wt = s.Weight == DType.F32 ? null : device.Convert(w32, s.Weight);
        int before = device.TensorCoreConvLaunches;
        var got = Conv(s, dtype, x, wt ?? w32, b, device);
        return (got, Expected(s, dtype, x, w, b), device.TensorCoreConvLaunches == before + 1);
    }

    private float[] Conv(Shape s, DType dtype, float[] x, Tensor weight, float[]? b, IlgpuDevice? on = null)
    {
        var device = on ?? Target;
        using var x32 = device.Upload(x, s.N, s.Cin, s.H, s.W);
        using var xh = device.Convert(x32, dtype);
        using var bias32 = b is null ? null : device.Upload(b, s.Cout);
        using var biasHalf = bias32 is null || s.BiasStorage == DType.F32 ? null : device.Convert(bias32, s.BiasStorage);
        using var output = device.Allocate(dtype, s.N, s.Cout, s.Ho, s.Wo);
        device.Conv2d(xh, weight, biasHalf ?? bias32, output, s.Stride, s.Padding);
        return output.ToArray();
    }

    /// <summary>fp64 over the input and weight as the kernel reads them: rounded to the activation type (the weight first to its storage).</summary>
    private static double[] Expected(Shape s, DType dtype, float[] x, float[] w, float[]? b)
    {
        var xr = x.Select(v => Round(v, dtype)).ToArray();
        var wr = w.Select(v => Round(Round(v, s.Weight), dtype)).ToArray();
        var expected = new double[s.N * s.Cout * s.Ho * s.Wo];
        int k = s.Kernel;
        for (int n = 0; n < s.N; n++)
            for (int co = 0; co < s.Cout; co++)
                for (int oy = 0; oy < s.Ho; oy++)
                    for (int ox = 0; ox < s.Wo; ox++)
                    {
                        double sum = b is null ? 0 : Round(b[co], s.BiasStorage);
                        for (int ci = 0; ci < s.Cin; ci++)
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++)
                                {
                                    int iy = oy * s.Stride - s.Padding + ky, ix = ox * s.Stride - s.Padding + kx;
                                    if (iy < 0 || iy >= s.H || ix < 0 || ix >= s.W) continue;
                                    sum += (double)xr[((n * s.Cin + ci) * s.H + iy) * s.W + ix] * wr[((co * s.Cin + ci) * k + ky) * k + kx];
                                }
                        expected[((n * s.Cout + co) * s.Ho + oy) * s.Wo + ox] = sum;
                    }
        return expected;
    }

    private static void AssertClose(double[] expected, float[] got, DType dtype, string what)
    {
        double tolerance = dtype == DType.F16 ? 2e-3 : 8e-3;
        double scale = expected.Max(Math.Abs), err = expected.Zip(got, (e, v) => Math.Abs(e - v)).Max();
        TestContext.Out.WriteLine($"{what} {dtype}: relative error {err / scale:E2} (tolerance {tolerance:E1})");
        Assert.That(err / scale, Is.LessThanOrEqualTo(tolerance), $"{what} {dtype}: max error {err} of {scale}");
    }

    [TestCaseSource(nameof(Eligible))]
    public void EligibleConvolutionRunsOnTensorCores(Shape shape, DType dtype)
    {
        var (got, expected, routed) = Run(shape, dtype);
        Assert.That(routed, Is.True, $"{shape} {dtype} should take the tensor-core kernel");
        AssertClose(expected, got, dtype, shape.ToString());
    }

    /// <summary>
    /// K split over blocks (float32 partials, then a reduction that adds the bias and rounds once), as few-pixel
    /// convolutions run on a GPU with many multiprocessors: forced here, with a split count that leaves the last
    /// split shorter than the others, and with more splits than the short K has slabs.
    /// </summary>
    [TestCase(3)]
    [TestCase(40)]
    public void SplitKMatchesReference(int splits)
    {
        var device = Target;
        device.ForcedConvSplits = splits;
        try
        {
            foreach (var (shape, dtype) in new[] { (Odd3x3, DType.F16), (OddStride2, DType.BF16), (Dense1x1, DType.F16), (TapMajor64, DType.F16) })
            {
                var (got, expected, routed) = Run(shape, dtype);
                Assert.That(routed, Is.True);
                AssertClose(expected, got, dtype, $"{shape} in {splits} splits");
            }
        }
        finally { device.ForcedConvSplits = null; }
    }

    /// <summary>
    /// The 128 x 128 block tile (8 warps of 64 channels x 32 pixels, 256 threads), forced: 3x3 at strides 1 and 2, the
    /// dense and the gathered 1x1 slabs, bf16, and a K split; every shape is a partial tile in channels and pixels.
    /// </summary>
    [Test]
    public void LargeBlockTileMatchesReference()
    {
        var device = Wide;
        foreach (var (shape, dtype) in new[] { (Large, DType.F16), (Dense1x1, DType.F16), (Gathered1x1, DType.F16), (OddStride2, DType.BF16), (TapMajorStride2, DType.F16) })
        {
            int before = device.TensorCoreConvLargeLaunches;
            var (got, expected, routed) = Run(shape, dtype, device);
            Assert.That(routed && device.TensorCoreConvLargeLaunches == before + 1, Is.True, $"{shape} {dtype} on the 128 x 128 tile");
            AssertClose(expected, got, dtype, $"{shape} 128 x 128");
        }
        device.ForcedConvSplits = 3;
        try
        {
            var (got, expected, _) = Run(Odd3x3, DType.F16, device);
            AssertClose(expected, got, DType.F16, $"{Odd3x3} 128 x 128 in 3 splits");
        }
        finally { device.ForcedConvSplits = null; }
    }

    [Test]
    public void IneligibleConvolutionKeepsTiledKernel([ValueSource(nameof(Ineligible))] Shape shape)
    {
        var (got, expected, routed) = Run(shape, DType.F16);
        Assert.That(routed, Is.False, $"{shape} does not fit the tensor-core tiles");
        AssertClose(expected, got, DType.F16, shape.ToString());
    }

    [Test]
    public void Float32ActivationsKeepTiledKernel()
    {
        var device = Target;
        using var x = device.Upload(Reference.Random(new Random(5), 2 * 16 * 5 * 6, 1f), 2, 16, 5, 6);
        using var w = device.Upload(Reference.Random(new Random(6), 8 * 16 * 9, 0.3f), 8, 16, 3, 3);
        using var output = device.Allocate(2, 8, 5, 6);
        int before = device.TensorCoreConvLaunches;
        device.Conv2d(x, w, null, output, 1, 1);
        Assert.That(device.TensorCoreConvLaunches, Is.EqualTo(before));
    }

    [Test]
    public void TapMajorWeightIsReorderedOnce()
    {
        // Cin 32: the 3x3 weight (already f16) is reordered to [Cout, 3, 3, Cin] on first use and the copy serves later
        // calls; a 1x1 weight is tap-major as it is, so it gets no copy (Cin 16 keeps the (ci, ky, kx) walk: see below).
        var device = Target;
        var s = new Shape(1, 32, 5, 6, 8, 3, 1, 1, false, DType.F16);
        var (x1, w1, _) = Inputs(s, 3);
        var (x2, _, _) = Inputs(s, 4);
        using var w32 = device.Upload(w1, s.Cout, s.Cin, 3, 3);
        using var weight = device.Convert(w32, DType.F16);
        AssertClose(Expected(s, DType.F16, x1, w1, null), Conv(s, DType.F16, x1, weight, null), DType.F16, "first call");
        var copy = device.ParameterCopy(weight, DType.F16, tapMajor: true);
        Assert.That(copy, Is.Not.Null, "reordered on first use");
        Assert.That(copy!.ShapeArray(), Is.EqualTo(new[] { 8, 3, 3, 32 }));
        AssertClose(Expected(s, DType.F16, x2, w1, null), Conv(s, DType.F16, x2, weight, null), DType.F16, "second call");
        Assert.That(device.ParameterCopy(weight, DType.F16, tapMajor: true), Is.SameAs(copy), "the copy is reused");

        var (x1x1, w1x1, _) = Inputs(Dense1x1, 5);
        using var w1x1Float = device.Upload(w1x1, Dense1x1.Cout, Dense1x1.Cin, 1, 1);
        using var h1x1 = device.Convert(w1x1Float, DType.F16);
        Conv(Dense1x1, DType.F16, x1x1, h1x1, null);
        Assert.That(device.ParameterCopy(h1x1, DType.F16, tapMajor: true), Is.Null, "a 1x1 weight is tap-major as stored");
    }

    [Test]
    public void ConvertedWeightIsKeptAcrossCalls()
    {
        // A float32 weight under f16 activations is converted on its first use only; the copy serves later
        // calls with other inputs, and another weight tensor gets its own copy, not the first one's.
        var device = Target;
        var s = new Shape(1, 16, 5, 6, 8, 3, 1, 1, false, DType.F32);
        var (x1, w1, _) = Inputs(s, 1);
        var (x2, w2, _) = Inputs(s, 2);
        using var weight1 = device.Upload(w1, s.Cout, s.Cin, 3, 3);
        using var weight2 = device.Upload(w2, s.Cout, s.Cin, 3, 3);
        Assert.That(device.ParameterCopy(weight1, DType.F16), Is.Null);
        AssertClose(Expected(s, DType.F16, x1, w1, null), Conv(s, DType.F16, x1, weight1, null), DType.F16, "first call");
        var copy = device.ParameterCopy(weight1, DType.F16);
        Assert.That(copy, Is.Not.Null, "converted on first use");
        AssertClose(Expected(s, DType.F16, x2, w1, null), Conv(s, DType.F16, x2, weight1, null), DType.F16, "second call, same weight");
        Assert.That(device.ParameterCopy(weight1, DType.F16), Is.SameAs(copy), "the copy is reused");
        AssertClose(Expected(s, DType.F16, x1, w2, null), Conv(s, DType.F16, x1, weight2, null), DType.F16, "another weight");
        Assert.That(device.ParameterCopy(weight2, DType.F16), Is.Not.Null.And.Not.SameAs(copy), "another weight, its own copy");
        Assert.That(device.ParameterCopy(weight1, DType.F16, tapMajor: true), Is.Null, "Cin 16 is gathered by the (ci, ky, kx) walk");
    }
}
