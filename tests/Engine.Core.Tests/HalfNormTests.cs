using Engine.Cpu;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// GroupNorm (+ SiLU), LayerNorm and Softmax on F16 / BF16 activations through the half kernels of the ILGPU device
/// (no float32 staging), on the CPU accelerator with 64-thread groups and with the GPU's 256: odd sizes
/// (blocks not a multiple of the four-half vector), blocks that start off a quad boundary, offset views
/// (the single-half path throughout), in place, and the split GroupNorm. Each result is checked against
/// (1) the device's float32 kernel on the same rounded inputs, rounded once: equal bit for bit on the CPU
/// accelerator where the half kernels reduce every thread's elements in the float32 kernels' order (all but the
/// split GroupNorm and the warp-per-row LayerNorm, whose statistics take one shifted pass: there within one unit of
/// the format's rounding); and
/// (2) the float32 managed CPU device on the unrounded inputs within the per-op tolerances of
/// <see cref="HalfActivationTests"/> (2e-3 f16, 1.6e-2 bf16: a few units of the format's rounding).
/// </summary>
[TestFixtureSource(nameof(Kinds))]
public class HalfNormTests(string kind)
{
    private const double F16Tolerance = 2e-3, BF16Tolerance = 1.6e-2;
    private const string WideCpu = "ilgpu-cpu-256";
    private static readonly CpuDevice Cpu = new();
    private static readonly Lazy<IlgpuDevice> Wide = new(() => IlgpuDevice.CreateSimulated(warpsPerGroup: 8));

    public static IEnumerable<string> Kinds
    {
        get
        {
            foreach (var k in TestDevices.Kinds.Where(k => k != "cpu"))
            {
                yield return k;
                if (k == "ilgpu-cpu") yield return WideCpu;
            }
        }
    }

    private Device Target => kind == WideCpu ? Wide.Value : TestDevices.Get(kind);

    private static readonly DType[] Halves = [DType.F16, DType.BF16];

    private static float Round(float v, DType dtype) =>
        dtype == DType.F16 ? (float)(System.Half)v : DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v));

    /// <summary>
    /// Uploads <paramref name="values"/> as <paramref name="dtype"/> at element <paramref name="offset"/> of a
    /// larger buffer (a view, as a slice of the models' tensors is), returning the owner and the view.
    /// </summary>
    private static (Tensor Owner, Tensor View) Place(Device device, float[] values, DType dtype, int offset, int[] shape)
    {
        var padded = new float[offset + values.Length];
        values.CopyTo(padded, offset);
        using var wide = device.Upload(padded, padded.Length);
        var owner = dtype == DType.F32 ? device.Upload(padded, padded.Length) : device.Convert(wide, dtype);
        return (owner, owner.Reshape(padded.Length).Slice(offset, values.Length).Reshape(shape));
    }

    private void Check(string what, DType dtype, int offset, bool inPlace, int[] shape, float[] x, float[]? gamma, float[]? beta,
        Action<Device, Tensor, Tensor?, Tensor?, Tensor> run, bool sameOrder = true)
    {
        var device = Target;
        var rounded = x.Select(v => Round(v, dtype)).ToArray();
        Tensor? Param(Device d, float[]? p) => p is null ? null : d.Upload(p, p.Length);

        // (1) The float32 kernel of this device on the rounded inputs, rounded once.
        float[] exact;
        using (var x32 = device.Upload(rounded, shape))
        using (var y32 = device.Allocate(shape))
        using (var g32 = Param(device, gamma))
        using (var b32 = Param(device, beta))
        {
            run(device, x32, g32, b32, y32);
            exact = y32.ToArray().Select(v => Round(v, dtype)).ToArray();
        }
        // (2) The managed float32 device on the unrounded inputs.
        float[] full;
        using (var cx = Cpu.Upload(x, shape))
        using (var cy = Cpu.Allocate(shape))
        using (var cg = Param(Cpu, gamma))
        using (var cb = Param(Cpu, beta))
        {
            run(Cpu, cx, cg, cb, cy);
            full = cy.ToArray();
        }

        var (xOwner, xh) = Place(device, x, dtype, offset, shape);
        var (yOwner, yh) = inPlace ? (xOwner, xh) : Place(device, new float[x.Length], dtype, offset, shape);
        using var g = Param(device, gamma);
        using var b = Param(device, beta);
        try
        {
            device.Transfers.ResetPeaks();
            long live = device.Transfers.LiveBytes;
            run(device, xh, g, b, yh);
            long peak = device.Transfers.PeakLiveBytes;
            var got = yh.ToArray();
            if (kind.StartsWith("ilgpu-cpu", StringComparison.Ordinal) && sameOrder)
                Assert.That(got, Is.EqualTo(exact), $"{what} {dtype}: the float32 kernel on the rounded inputs, rounded once");
            else if (kind.StartsWith("ilgpu-cpu", StringComparison.Ordinal))
                for (int i = 0; i < got.Length; i++)
                    Assert.That(got[i], Is.EqualTo(exact[i]).Within(Math.Max(Unit(exact[i], dtype), StatisticsSlack)),
                        $"{what} {dtype}: element {i} within one unit of the float32 kernel's result on the rounded inputs");
            double error = Fixtures.RelativeError(got, full), tolerance = dtype == DType.F16 ? F16Tolerance : BF16Tolerance;
            TestContext.Out.WriteLine($"{what} {dtype} on {kind}: relative error {error:E2} (tolerance {tolerance:E1})");
            Assert.That(error, Is.LessThanOrEqualTo(tolerance), $"{what} {dtype} against the float32 CPU device");
            Assert.That(peak, Is.EqualTo(live), $"{what} {dtype}: no float32 stand-ins (staging) during the op");
        }
        finally
        {
            xOwner.Dispose();
            if (!inPlace) yOwner.Dispose();
        }
    }

    /// <summary>
    /// Absolute difference allowed near zero between two fp32 statistics of one group (mean ~3, a thousand elements:
    /// each sum's rounding moves the mean by up to ~1e-6, and y by that times rstd gamma).
    /// </summary>
    internal const double StatisticsSlack = 1e-5;

    /// <summary>The spacing of <paramref name="dtype"/>'s values around <paramref name="v"/> (one unit of its rounding).</summary>
    internal static double Unit(float v, DType dtype)
    {
        int exponent = Math.Max(Math.ILogB(Math.Abs(v) == 0 ? 1e-30 : Math.Abs(v)), dtype == DType.F16 ? -14 : -126);
        return Math.ScaleB(1.0, exponent - (dtype == DType.F16 ? 10 : 7));
    }

    /// <summary>n, c, h, w, groups, forced splits (0: the device's choice), affine, silu, element offset of the views, in place; each in f16 and bf16.</summary>
    private static readonly object[][] GroupNormShapes =
    [
        [2, 12, 5, 7, 4, 0, true, true, 0, false], // 105 per group: group starts off quad boundaries, a tail
        [1, 32, 16, 16, 32, 0, true, true, 0, false], // 256 per group: quads throughout
        [1, 6, 33, 17, 3, 0, false, false, 0, false], // 1122 per group: several tiles per thread group
        [2, 8, 9, 9, 2, 7, true, false, 0, false], // split, chunks of 47 (unaligned chunk starts)
        [1, 4, 32, 32, 2, 3, true, true, 0, true], // split, 2048 per group, in place
        [2, 6, 11, 1, 3, 64, true, false, 0, false], // more blocks than values: empty chunks
        [2, 8, 8, 8, 4, 0, true, true, 3, false], // odd view offset: single halves only
        [1, 16, 8, 8, 4, 0, false, true, 4, true], // quad-aligned offset, in place
    ];

    public static IEnumerable<TestCaseData> GroupNormCases() =>
        GroupNormShapes.SelectMany(c => Halves.Select(d => new TestCaseData([.. c, d])));

    [TestCaseSource(nameof(GroupNormCases))]
    public void GroupNorm(int n, int c, int h, int w, int groups, int splits, bool affine, bool silu, int offset, bool inPlace, DType dtype)
    {
        var rng = new Random(n * 1000 + c * 10 + groups);
        // An offset mean makes a one-pass variance visibly wrong.
        var x = Reference.Random(rng, n * c * h * w, 2f).Select(v => v + 3f).ToArray();
        var gamma = affine ? Reference.Random(rng, c, 1f).Select(v => v + 1f).ToArray() : null;
        var beta = affine ? Reference.Random(rng, c, 0.5f) : null;
        var ilgpu = Target as IlgpuDevice;
        if (ilgpu is not null && splits > 0) ilgpu.ForcedGroupNormSplits = splits;
        try
        {
            // Split groups take the one-pass shifted statistics (HalfNormKernels.GroupNormPartial).
            bool split = ilgpu is not null && ilgpu.GroupNormSplits((long)n * groups, (long)c / groups * h * w) > 1;
            Check($"GroupNorm {n}x{c}x{h}x{w}/{groups} splits {splits}", dtype, offset, inPlace, [n, c, h, w], x, gamma, beta,
                (d, tx, tg, tb, ty) => d.GroupNorm(tx, tg, tb, ty, groups, 1e-5f, silu), sameOrder: !split);
        }
        finally { if (ilgpu is not null) ilgpu.ForcedGroupNormSplits = null; }
    }

    /// <summary>rows, d, affine, element offset, in place; each in f16 and bf16.</summary>
    private static readonly object[][] LayerNormShapes =
    [
        [6, 1, true, 0, false],
        [6, 7, true, 0, false], // rows start off quad boundaries
        [5, 40, false, 0, false],
        [3, 129, true, 0, true],
        [2, 1030, true, 0, false], // several tiles per row
        [4, 64, true, 1, false], // odd view offset
        [4, 320, true, 8, true],
    ];

    public static IEnumerable<TestCaseData> LayerNormCases() =>
        LayerNormShapes.SelectMany(c => Halves.Select(d => new TestCaseData([.. c, d])));

    [TestCaseSource(nameof(LayerNormCases))]
    public void LayerNorm(int rows, int d, bool affine, int offset, bool inPlace, DType dtype)
    {
        var rng = new Random(rows * 31 + d);
        var x = Reference.Random(rng, rows * d, 2f).Select(v => v - 1.5f).ToArray();
        var gamma = affine ? Reference.Random(rng, d, 1f) : null;
        var beta = affine ? Reference.Random(rng, d, 0.5f) : null;
        // A warp per row (HalfNormKernels.LayerNormRows) takes the one-pass shifted statistics.
        bool warpRows = Target is IlgpuDevice { WarpRowNorms: true };
        Check($"LayerNorm {rows}x{d}", dtype, offset, inPlace, [rows, d], x, gamma, beta, (dv, tx, tg, tb, ty) => dv.LayerNorm(tx, tg, tb, ty, 1e-6f),
            sameOrder: !warpRows);
    }

    /// <summary>rows, d, element offset, in place; each in f16 and bf16 (the half softmax kernel, fp32 max and sum).</summary>
    private static readonly object[][] SoftmaxShapes =
    [
        [6, 1, 0, false],
        [6, 7, 0, false], // rows start off quad boundaries
        [8, 77, 0, true], // a text encoder's row, in place
        [2, 1030, 0, false], // several tiles per row
        [4, 64, 1, false], // odd view offset
        [3, 320, 8, false],
    ];

    public static IEnumerable<TestCaseData> SoftmaxCases() =>
        SoftmaxShapes.SelectMany(c => Halves.Select(d => new TestCaseData([.. c, d])));

    [TestCaseSource(nameof(SoftmaxCases))]
    public void Softmax(int rows, int d, int offset, bool inPlace, DType dtype)
    {
        var rng = new Random(rows * 17 + d);
        // Logits in [-2, 2]: exp spreads them over several binades, and the input's own rounding (which moves y by
        // y |dx|, up to 2^-11 |x| y in f16) stays inside the per-op tolerance against the unrounded inputs.
        var x = Reference.Random(rng, rows * d, 2f);
        Check($"Softmax {rows}x{d}", dtype, offset, inPlace, [rows, d], x, null, null, (dv, tx, _, _, ty) => dv.Softmax(tx, ty));
    }

    /// <summary>Mixed storages (F16 in, BF16 out) take float32 stand-ins and still match the float32 CPU device.</summary>
    [Test]
    public void SoftmaxMixedStorages()
    {
        var device = Target;
        var rng = new Random(91);
        var x = Reference.Random(rng, 5 * 24, 3f);
        using var x32 = device.Upload(x, 5, 24);
        using var xh = device.Convert(x32, DType.F16);
        using var y = device.Allocate(DType.BF16, 5, 24);
        device.Softmax(xh, y);
        using var cx = Cpu.Upload(x, 5, 24);
        using var cy = Cpu.Allocate(5, 24);
        Cpu.Softmax(cx, cy);
        Assert.That(Fixtures.RelativeError(y.ToArray(), cy.ToArray()), Is.LessThanOrEqualTo(BF16Tolerance));
    }

    /// <summary>Half affine parameters are widened by the device and the half kernel still runs (no staging of x or the output).</summary>
    [Test]
    public void HalfAffineParameters([ValueSource(nameof(Halves))] DType dtype)
    {
        var device = Target;
        var rng = new Random(77);
        var x = Reference.Random(rng, 2 * 8 * 5 * 5, 2f);
        var gamma = Reference.Random(rng, 8, 1f).Select(v => Round(v, dtype)).ToArray();
        var beta = Reference.Random(rng, 8, 0.5f).Select(v => Round(v, dtype)).ToArray();
        using var x32 = device.Upload(x, 2, 8, 5, 5);
        using var xh = device.Convert(x32, dtype);
        using var g32 = device.Upload(gamma, 8);
        using var gh = device.Convert(g32, dtype);
        using var b32 = device.Upload(beta, 8);
        using var bh = device.Convert(b32, dtype);
        using var withHalf = device.Allocate(dtype, 2, 8, 5, 5);
        using var withFloat = device.Allocate(dtype, 2, 8, 5, 5);
        device.GroupNorm(xh, gh, bh, withHalf, 4, 1e-5f, silu: true);
        device.GroupNorm(xh, g32, b32, withFloat, 4, 1e-5f, silu: true);
        Assert.That(withHalf.ToArray(), Is.EqualTo(withFloat.ToArray()));
    }
}
