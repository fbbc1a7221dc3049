using Engine.Cpu;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// Linear layers with F16 activations and weights and the models' float32 bias reach the tensor-core GEMM
/// through the device's routing (its instructions emulated on the CPU accelerator, 256-thread groups), and
/// match the float32 CPU device on the same f16-rounded inputs within 2e-3 of the largest output (one f16
/// rounding of the output, 2^-11 relative, plus fp32 accumulation in another order). BF16 Linear layers take the
/// same GEMM with the bf16 mma, within 8e-3 on bf16-rounded inputs (one bf16 rounding of the output, 2^-9).
/// </summary>
public class TensorCoreLinearTests
{
    private const double Tolerance = 2e-3;
    private static readonly CpuDevice Cpu = new();
    private static readonly Lazy<IlgpuDevice> Emulated = new(() =>
    {
        var device = IlgpuDevice.CreateSimulated(warpsPerGroup: 8);
        device.EmulateTensorCoreGemm = true;
        return device;
    });

    [OneTimeSetUp]
    public void Open()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_TEST_ILGPU") == "0") Assert.Ignore("ILGPU CPU-accelerator tests are off (ENGINE_TEST_ILGPU=0)");
    }

    private static float[] Rounded(float[] x) => x.Select(v => (float)(System.Half)v).ToArray();

    private static float[] RoundedBF16(float[] x) => x.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v))).ToArray();

    private static Tensor Half(Device device, DType dtype, float[] values, params int[] shape)
    {
        using var wide = device.Upload(values, shape);
        return device.Convert(wide, dtype);
    }

    private static Tensor F16(Device device, float[] values, params int[] shape)
    {
        using var wide = device.Upload(values, shape);
        return device.Convert(wide, DType.F16);
    }

    /// <summary>
    /// The same Linear on each block tile (64 x 64 with 4 warps, 128 x 128 with 8 warps of 64 x 32) when forced, and
    /// the same values from both: the tiles split the outputs differently but every output sums its k in one order.
    /// </summary>
    [Test]
    public void BothBlockTilesGiveTheSameLinear()
    {
        var device = Emulated.Value;
        var rng = new Random(77);
        const int rows = 150, inF = 48, outF = 136;
        var x = Rounded(Reference.Random(rng, rows * inF, 2f));
        var w = Rounded(Reference.Random(rng, outF * inF, 0.3f));
        var bias = Reference.Random(rng, outF, 0.7f);
        using var xh = F16(device, x, rows, inF);
        using var wh = F16(device, w, outF, inF);
        using var b = device.Upload(bias, outF);
        var results = new List<float[]>();
        try
        {
            foreach (bool large in new[] { false, true })
            {
                device.ForcedLargeGemmBlock = large;
                using var y = device.Allocate(DType.F16, rows, outF);
                long before = device.TensorCoreGemmLargeLaunches;
                device.Linear(xh, wh, b, y, Activation.SiLU);
                Assert.That(device.TensorCoreGemmLargeLaunches - before, Is.EqualTo(large ? 1 : 0), $"large tile {large}");
                results.Add(y.ToArray());
            }
        }
        finally { device.ForcedLargeGemmBlock = null; }
        Assert.That(results[1], Is.EqualTo(results[0]), "both tiles, bit for bit");
        using var cx = Cpu.Upload(x, rows, inF);
        using var cw = Cpu.Upload(w, outF, inF);
        using var cb = Cpu.Upload(bias, outF);
        using var cy = Cpu.Allocate(rows, outF);
        Cpu.Linear(cx, cw, cb, cy, Activation.SiLU);
        Assert.That(Fixtures.RelativeError(results[1], cy.ToArray()), Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>
    /// x [rows, in] -> [rows, out] with a float32 bias, optionally through a row slice of the weight and bias
    /// (as ForwardChunk computes a chunk of the output) and with a fused activation.
    /// </summary>
    [TestCase(38, 40, 37, 0, Activation.None)]
    [TestCase(70, 64, 24, 0, Activation.SiLU)]
    [TestCase(5, 96, 72, 16, Activation.GeluTanh)]
    public void LinearWithFloat32BiasRoutesToTensorCores(int rows, int inF, int outF, int sliceStart, Activation activation)
    {
        var device = Emulated.Value;
        var rng = new Random(rows + inF);
        var x = Rounded(Reference.Random(rng, rows * inF, 2f));
        int weightRows = outF + 2 * sliceStart;
        var w = Rounded(Reference.Random(rng, weightRows * inF, 0.3f));
        var bias = Reference.Random(rng, weightRows, 0.7f);

        using var xh = F16(device, x, rows, inF);
        using var wh = F16(device, w, weightRows, inF);
        using var b = device.Upload(bias, weightRows);
        using var y = device.Allocate(DType.F16, rows, outF);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh.Slice(sliceStart, outF), b.Slice(sliceStart, outF), y, activation);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 1), "the Linear ran on the tensor-core GEMM");

        using var cx = Cpu.Upload(x, rows, inF);
        using var cw = Cpu.Upload(w, weightRows, inF);
        using var cb = Cpu.Upload(bias, weightRows);
        using var cy = Cpu.Allocate(rows, outF);
        Cpu.Linear(cx, cw.Slice(sliceStart, outF), cb.Slice(sliceStart, outF), cy, activation);
        double error = Fixtures.RelativeError(y.ToArray(), cy.ToArray());
        TestContext.Out.WriteLine($"Linear {rows}x{inF}->{outF} {activation}: relative error {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>
    /// The bias is added in float32: 1000 x (-1) + 1000.3 is 0.3 (f16 0.2998); a bias rounded to f16 first
    /// (1000.5) would give 0.5.
    /// </summary>
    [Test]
    public void BiasIsAddedInFloat32()
    {
        var device = Emulated.Value;
        const int inF = 8, outF = 8;
        var x = new float[inF];
        x[0] = 1000f;
        var w = new float[outF * inF];
        for (int o = 0; o < outF; o++) w[o * inF] = -1f;
        var bias = Enumerable.Repeat(1000.3f, outF).ToArray();
        using var xh = F16(device, x, 1, inF);
        using var wh = F16(device, w, outF, inF);
        using var b = device.Upload(bias, outF);
        using var y = device.Allocate(DType.F16, 1, outF);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh, b, y);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 1));
        Assert.That(y.ToArray(), Is.All.EqualTo((float)(System.Half)0.3f).Within(1e-7f));
    }

    /// <summary>A half bias is widened once (its float32 copy kept for later calls) and the product still runs on the tensor cores.</summary>
    [Test]
    public void HalfBiasIsWidenedAndRouted()
    {
        var device = Emulated.Value;
        var rng = new Random(5);
        var x = Rounded(Reference.Random(rng, 9 * 16));
        var w = Rounded(Reference.Random(rng, 24 * 16, 0.5f));
        var bias = Rounded(Reference.Random(rng, 24));
        using var xh = F16(device, x, 9, 16);
        using var wh = F16(device, w, 24, 16);
        using var bh = F16(device, bias, 24);
        using var y = device.Allocate(DType.F16, 9, 24);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh, bh, y, Activation.SiLU);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 1));
        var widened = device.ParameterCopy(bh, DType.F32);
        Assert.That(widened, Is.Not.Null);
        device.Linear(xh, wh, bh, y, Activation.SiLU);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 2));
        Assert.That(device.ParameterCopy(bh, DType.F32), Is.SameAs(widened));
        using var cx = Cpu.Upload(x, 9, 16);
        using var cw = Cpu.Upload(w, 24, 16);
        using var cb = Cpu.Upload(bias, 24);
        using var cy = Cpu.Allocate(9, 24);
        Cpu.Linear(cx, cw, cb, cy, Activation.SiLU);
        Assert.That(Fixtures.RelativeError(y.ToArray(), cy.ToArray()), Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>A depth the tensor-core GEMM cannot take (K not a multiple of 8) keeps the general kernel.</summary>
    [Test]
    public void OddDepthKeepsGeneralGemm()
    {
        var device = Emulated.Value;
        var rng = new Random(6);
        var x = Rounded(Reference.Random(rng, 7 * 13));
        var w = Rounded(Reference.Random(rng, 10 * 13, 0.5f));
        var bias = Reference.Random(rng, 10);
        using var xh = F16(device, x, 7, 13);
        using var wh = F16(device, w, 10, 13);
        using var b = device.Upload(bias, 10);
        using var y = device.Allocate(DType.F16, 7, 10);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh, b, y);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before));
        using var cx = Cpu.Upload(x, 7, 13);
        using var cw = Cpu.Upload(w, 10, 13);
        using var cb = Cpu.Upload(bias, 10);
        using var cy = Cpu.Allocate(7, 10);
        Cpu.Linear(cx, cw, cb, cy);
        Assert.That(Fixtures.RelativeError(y.ToArray(), cy.ToArray()), Is.LessThanOrEqualTo(Tolerance));
    }

    /// <summary>
    /// BF16 activations, weight and output with a float32 bias (whole and sliced weight, fused activations) run on
    /// the tensor-core GEMM with the bf16 mma, and match the float32 CPU device on the same bf16-rounded inputs.
    /// </summary>
    [TestCase(38, 40, 37, 0, Activation.None)]
    [TestCase(5, 96, 72, 16, Activation.GeluTanh)]
    public void BF16LinearRoutesToTensorCores(int rows, int inF, int outF, int sliceStart, Activation activation)
    {
        var device = Emulated.Value;
        var rng = new Random(rows + inF + 1);
        var x = RoundedBF16(Reference.Random(rng, rows * inF, 2f));
        int weightRows = outF + 2 * sliceStart;
        var w = RoundedBF16(Reference.Random(rng, weightRows * inF, 0.3f));
        var bias = Reference.Random(rng, weightRows, 0.7f);

        using var xh = Half(device, DType.BF16, x, rows, inF);
        using var wh = Half(device, DType.BF16, w, weightRows, inF);
        using var b = device.Upload(bias, weightRows);
        using var y = device.Allocate(DType.BF16, rows, outF);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh.Slice(sliceStart, outF), b.Slice(sliceStart, outF), y, activation);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 1), "the BF16 Linear ran on the tensor-core GEMM");

        using var cx = Cpu.Upload(x, rows, inF);
        using var cw = Cpu.Upload(w, weightRows, inF);
        using var cb = Cpu.Upload(bias, weightRows);
        using var cy = Cpu.Allocate(rows, outF);
        Cpu.Linear(cx, cw.Slice(sliceStart, outF), cb.Slice(sliceStart, outF), cy, activation);
        double error = Fixtures.RelativeError(y.ToArray(), cy.ToArray());
        TestContext.Out.WriteLine($"BF16 Linear {rows}x{inF}->{outF} {activation}: relative error {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(BF16Tolerance));
    }

    private const double BF16Tolerance = 8e-3;

    /// <summary>
    /// A BF16 Linear whose bound weight is stored in another type (F16, float32: the weight storage is chosen apart
    /// from the activation precision) reads the weight's bf16 copy, made once and kept, and runs on the tensor cores;
    /// the product matches the float32 CPU device on the bf16-rounded weight.
    /// </summary>
    [TestCase(DType.F16)]
    [TestCase(DType.F32)]
    public void BF16LinearConvertsAnOtherWeightOnce(DType weightType)
    {
        var device = Emulated.Value;
        var rng = new Random(7);
        var x = RoundedBF16(Reference.Random(rng, 11 * 24));
        var w = Rounded(Reference.Random(rng, 16 * 24, 0.5f));
        using var xh = Half(device, DType.BF16, x, 11, 24);
        using var wt = weightType == DType.F32 ? device.Upload(w, 16, 24) : Half(device, weightType, w, 16, 24);
        using var y = device.Allocate(DType.BF16, 11, 16);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wt, null, y);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 1));
        var copy = device.ParameterCopy(wt, DType.BF16);
        Assert.That(copy, Is.Not.Null, "the weight's bf16 copy is kept");
        device.Linear(xh, wt, null, y);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before + 2));
        Assert.That(device.ParameterCopy(wt, DType.BF16), Is.SameAs(copy), "the copy is made once");

        using var cx = Cpu.Upload(x, 11, 24);
        using var cw = Cpu.Upload(RoundedBF16(w), 16, 24);
        using var cy = Cpu.Allocate(11, 16);
        Cpu.Linear(cx, cw, null, cy);
        Assert.That(Fixtures.RelativeError(y.ToArray(), cy.ToArray()), Is.LessThanOrEqualTo(BF16Tolerance));
    }

    /// <summary>Mixed activation types (BF16 input, F16 output) keep the general GEMM, which reads and writes any storage.</summary>
    [Test]
    public void MixedHalfTypesKeepGeneralGemm()
    {
        var device = Emulated.Value;
        var rng = new Random(8);
        var x = RoundedBF16(Reference.Random(rng, 6 * 16));
        var w = RoundedBF16(Reference.Random(rng, 8 * 16, 0.5f));
        using var xh = Half(device, DType.BF16, x, 6, 16);
        using var wh = Half(device, DType.BF16, w, 8, 16);
        using var y = device.Allocate(DType.F16, 6, 8);
        long before = device.TensorCoreGemmLaunches;
        device.Linear(xh, wh, null, y);
        Assert.That(device.TensorCoreGemmLaunches, Is.EqualTo(before));
        using var cx = Cpu.Upload(x, 6, 16);
        using var cw = Cpu.Upload(w, 8, 16);
        using var cy = Cpu.Allocate(6, 8);
        Cpu.Linear(cx, cw, null, cy);
        Assert.That(Fixtures.RelativeError(y.ToArray(), cy.ToArray()), Is.LessThanOrEqualTo(Tolerance));
    }
}
