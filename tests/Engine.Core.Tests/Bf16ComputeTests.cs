using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// bf16 compute on the CPU device (native kernels, src/Engine.Cpu/Bf16): Linear and Conv2d against a
/// double-precision product of the bf16-rounded inputs (only float32 accumulation differs: error at most
/// 1e-5 of the sum of |products|) and against the float32 product (each product off by at most two bf16
/// roundings, 2^-8 relative: 4.5e-3 of the sum of |products|). Skipped where the CPU lacks AVX512-BF16 or
/// the library is not built; the fallback tests run everywhere.
/// </summary>
[TestFixture]
public class Bf16ComputeTests
{
    private const double AccumulationTolerance = 1e-5, RoundingTolerance = 4.5e-3;

    private static CpuDevice Bf16Device()
    {
        var device = new CpuDevice(2);
        if (device.ComputeUnavailableReason(ComputePrecision.Bf16) is { } reason) Assert.Ignore($"bf16 compute unavailable: {reason}");
        device.Compute = ComputePrecision.Bf16;
        return device;
    }

    /// <summary>float32 to bf16 and back, rounding to nearest even (what the kernels do to every input).</summary>
    private static float RoundBf16(float x)
    {
        uint u = BitConverter.SingleToUInt32Bits(x);
        u += 0x7FFFu + ((u >> 16) & 1u);
        return BitConverter.UInt32BitsToSingle(u & 0xFFFF0000u);
    }

    private static float[] RoundAll(float[] v) => v.Select(RoundBf16).ToArray();

    /// <summary>Checks every element against both references, scaled by its sum of |products| (+ |bias|).</summary>
    private static void CheckAgainst(float[] got, double[] fromRounded, double[] fromF32, double[] magnitude, string what)
    {
        for (int i = 0; i < got.Length; i++)
        {
            Assert.That(Math.Abs(got[i] - fromRounded[i]), Is.LessThanOrEqualTo(AccumulationTolerance * magnitude[i] + 1e-7), $"{what}: element {i} against the bf16-rounded product");
            Assert.That(Math.Abs(got[i] - fromF32[i]), Is.LessThanOrEqualTo(RoundingTolerance * magnitude[i] + 1e-7), $"{what}: element {i} against the float32 product");
        }
        Assert.That(got.Where((v, i) => v != (float)fromF32[i]).Count(), Is.GreaterThan(got.Length / 2), $"{what}: the bf16 path rounded its inputs");
    }

    [TestCase(16, 33, 7, Activation.None)]
    [TestCase(70, 100, 600, Activation.GeluErf)]
    [TestCase(200, 2100, 40, Activation.SiLU)]
    public void LinearMatchesReferences(int rows, int outF, int inF, Activation activation)
    {
        var device = Bf16Device();
        var rng = new Random(rows + outF + inF);
        var x = Reference.Random(rng, rows * inF);
        var w = Reference.Random(rng, outF * inF);
        var bias = Reference.Random(rng, outF);
        using var tx = device.Upload(x, rows, inF);
        using var tw = device.Upload(w, outF, inF);
        using var tb = device.Upload(bias, outF);
        using var y = device.Allocate(rows, outF);
        device.Linear(tx, tw, tb, y, activation);
        // Pre-activation references and magnitudes, then the activation (1-Lipschitz-ish for these: GELU 1.13, SiLU 1.1).
        var pre = device.Allocate(rows, outF);
        device.Linear(tx, tw, tb, pre);
        var preValues = pre.ToArray();
        pre.Dispose();
        var fromRounded = Reference.MatMul(RoundAll(x), RoundAll(w), 1, 1, rows, outF, inF, false, true, bias, Activation.None, 1f);
        var fromF32 = Reference.MatMul(x, w, 1, 1, rows, outF, inF, false, true, bias, Activation.None, 1f);
        var magnitude = Reference.MatMul(x.Select(Math.Abs).ToArray(), w.Select(Math.Abs).ToArray(), 1, 1, rows, outF, inF, false, true,
            bias.Select(Math.Abs).ToArray(), Activation.None, 1f);
        CheckAgainst(preValues, fromRounded, fromF32, magnitude, $"Linear {rows}x{outF}x{inF}");
        var activated = y.ToArray();
        for (int i = 0; i < activated.Length; i++)
            Assert.That(activated[i], Is.EqualTo(Reference.Activate(preValues[i], activation)).Within(1e-5 * (1 + Math.Abs(preValues[i]))), $"activation at {i}");
    }

    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void LinearReadsHalfWeights(DType dtype)
    {
        var device = Bf16Device();
        const int rows = 40, outF = 45, inF = 64;
        var rng = new Random(9);
        var x = Reference.Random(rng, rows * inF);
        using var wide = device.Upload(Reference.Random(rng, outF * inF), outF, inF);
        using var stored = device.Allocate(dtype, outF, inF);
        device.Copy(wide, stored);
        var w = device.Download(stored);
        using var tx = device.Upload(x, rows, inF);
        using var y = device.Allocate(rows, outF);
        device.Linear(tx, stored, null, y);
        var fromRounded = Reference.MatMul(RoundAll(x), RoundAll(w), 1, 1, rows, outF, inF, false, true, null, Activation.None, 1f);
        var fromF32 = Reference.MatMul(x, w, 1, 1, rows, outF, inF, false, true, null, Activation.None, 1f);
        var magnitude = Reference.MatMul(x.Select(Math.Abs).ToArray(), w.Select(Math.Abs).ToArray(), 1, 1, rows, outF, inF, false, true, null, Activation.None, 1f);
        CheckAgainst(y.ToArray(), fromRounded, fromF32, magnitude, $"Linear with {dtype} weight");
    }

    [TestCase(2, 3, 9, 11, 8, 3, 1, 1)]     // odd depth (27), padding, two images
    [TestCase(1, 16, 12, 10, 40, 3, 2, 1)]  // stride 2
    [TestCase(1, 20, 15, 15, 13, 1, 1, 0)]  // 1x1, positions past a 128-column job
    [TestCase(2, 64, 20, 20, 70, 3, 1, 1)]  // depth 576 > one k block of the kernel
    public void Conv2dMatchesReferences(int batch, int cin, int h, int w, int cout, int k, int stride, int padding)
    {
        var device = Bf16Device();
        var rng = new Random(batch * 7 + cin + cout);
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * k * k);
        var bias = Reference.Random(rng, cout);
        int ho = (h + 2 * padding - k) / stride + 1, wo = (w + 2 * padding - k) / stride + 1;
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw = device.Upload(wt, cout, cin, k, k);
        using var tb = device.Upload(bias, cout);
        using var y = device.Allocate(batch, cout, ho, wo);
        device.Conv2d(tx, tw, tb, y, stride, padding);
        var fromRounded = Reference.Conv2d(RoundAll(x), RoundAll(wt), bias, batch, cin, h, w, cout, k, k, stride, padding);
        var fromF32 = Reference.Conv2d(x, wt, bias, batch, cin, h, w, cout, k, k, stride, padding);
        var magnitude = Reference.Conv2d(x.Select(Math.Abs).ToArray(), wt.Select(Math.Abs).ToArray(), bias.Select(Math.Abs).ToArray(),
            batch, cin, h, w, cout, k, k, stride, padding);
        CheckAgainst(y.ToArray(), fromRounded, fromF32, magnitude, $"Conv2d {cin}->{cout} k{k} s{stride} p{padding}");
    }

    [Test]
    public void WeightsArePackedOncePerTensor()
    {
        var device = Bf16Device();
        var rng = new Random(5);
        using var tx = device.Upload(Reference.Random(rng, 32 * 24), 32, 24);
        using var tw = device.Upload(Reference.Random(rng, 10 * 24), 10, 24);
        using var first = device.Allocate(32, 10);
        using var second = device.Allocate(32, 10);
        device.Linear(tx, tw, null, first);
        // A packed copy is reused: the same tensor gives the same bits, and a new tensor with other values a new result.
        device.Linear(tx, tw, null, second);
        Assert.That(second.ToArray(), Is.EqualTo(first.ToArray()));
        using var other = device.Upload(Reference.Random(rng, 10 * 24), 10, 24);
        device.Linear(tx, other, null, second);
        Assert.That(second.ToArray(), Is.Not.EqualTo(first.ToArray()));
    }

    [Test]
    public void AutoKeepsFloat32WhereBf16IsNotFaster()
    {
        var device = new CpuDevice(2);
        Assert.That(device.PrefersBf16, Is.False);
        Assert.That(device.Resolve(ComputeMode.Auto), Is.EqualTo(ComputePrecision.F32));
        if (device.ComputeUnavailableReason(ComputePrecision.Bf16) is null)
            Assert.That(device.Resolve(ComputeMode.Bf16), Is.EqualTo(ComputePrecision.Bf16));
    }

    [Test]
    public void AbsentLibraryFallsBackToFloat32()
    {
        var device = new CpuDevice(2) { Bf16 = Bf16Kernels.Load("none") };
        var reason = device.ComputeUnavailableReason(ComputePrecision.Bf16);
        Assert.That(reason, Does.Contain("ENGINE_BF16_LIBRARY"));
        Assert.That(device.Resolve(ComputeMode.Auto), Is.EqualTo(ComputePrecision.F32));
        var e = Assert.Throws<NotSupportedException>(() => device.Compute = ComputePrecision.Bf16)!;
        Assert.That(e.Message, Does.Contain("bf16").And.Contain("ENGINE_BF16_LIBRARY"));
        var missing = Bf16Kernels.Load("/nonexistent/libengine_bf16.so");
        Assert.That(missing.UnavailableReason, Does.Contain("not found"));
        Assert.That(missing.Describe(), Does.StartWith("bf16 compute: unavailable"));
    }

    [Test]
    public void RuntimeWithoutAvx512FallsBackToFloat32()
    {
        // DOTNET_EnableAVX512=0 (or a CPU whose AVX-512 the runtime does not use) keeps the native AVX-512 kernels off too.
        var kernels = Bf16Kernels.Load(null, runtimeAvx512: false);
        if (kernels.Features == 0) Assert.Ignore($"the bf16 kernel library is not loaded here: {kernels.UnavailableReason}");
        Assert.That(kernels.UnavailableReason, Does.Contain("AVX-512"));
        Assert.That(kernels.Describe(), Does.StartWith("bf16 compute: unavailable"));
        using var device = new CpuDevice(2) { Bf16 = kernels };
        Assert.That(device.ComputeUnavailableReason(ComputePrecision.Bf16), Does.Contain("AVX-512"));
        Assert.That(device.Resolve(ComputeMode.Auto), Is.EqualTo(ComputePrecision.F32));
        Assert.Throws<NotSupportedException>(() => device.Compute = ComputePrecision.Bf16);
    }

    [Test]
    public void Float32StaysTheDefaultAndBitIdentical()
    {
        var plain = new CpuDevice(2);
        Assert.That(plain.Compute, Is.EqualTo(ComputePrecision.F32));
        var rng = new Random(11);
        var x = Reference.Random(rng, 40 * 48);
        var w = Reference.Random(rng, 30 * 48);
        using var tx = plain.Upload(x, 40, 48);
        using var tw = plain.Upload(w, 30, 48);
        using var viaLinear = plain.Allocate(40, 30);
        using var viaMatMul = plain.Allocate(40, 30);
        plain.Linear(tx, tw, null, viaLinear);
        plain.MatMul(tx, tw, viaMatMul, transposeB: true);
        Assert.That(viaLinear.ToArray(), Is.EqualTo(viaMatMul.ToArray()), "Linear in float32 is the float32 GEMM, bit for bit");
    }
}
