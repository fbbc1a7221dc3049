using Engine.Cpu;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// Linear layers with F16 activations and weights and the models' float32 bias reach the tensor-core GEMM
/// through the device's routing (its instructions emulated on the CPU accelerator, 256-thread groups), and
/// match the float32 CPU device on the same f16-rounded inputs within 2e-3 of the largest output (one f16
/// rounding of the output, 2^-11 relative, plus fp32 accumulation in another order).
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

    private static Tensor F16(Device device, float[] values, params int[] shape)
    {
        using var wide = device.Upload(values, shape);
        return device.Convert(wide, DType.F16);
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
}
