using Engine.Cpu;
using Engine.Gpu;

namespace Engine.Core.Tests;

/// <summary>
/// Attention with F16 or BF16 q, k, v and output reaches the tensor-core flash attention through the device's
/// routing (its instructions emulated on the CPU accelerator, 256-thread groups) in that element type, and matches
/// the float32 CPU device on the same rounded inputs: within 4e-3 of the largest output in f16 and 1.6e-2 in bf16
/// (P and the output each rounded once to the element type; <see cref="TensorCoreAttentionTests"/> states why).
/// Mixed types keep the float32 stand-ins.
/// </summary>
public class TensorCoreAttentionRoutingTests
{
    private static readonly CpuDevice Cpu = new();
    private static readonly Lazy<IlgpuDevice> Emulated = new(() =>
    {
        var device = IlgpuDevice.CreateSimulated(warpsPerGroup: 8);
        device.EmulateTensorCoreAttention = true;
        return device;
    });

    [OneTimeSetUp]
    public void Open()
    {
        if (Environment.GetEnvironmentVariable("ENGINE_TEST_ILGPU") == "0") Assert.Ignore("ILGPU CPU-accelerator tests are off (ENGINE_TEST_ILGPU=0)");
    }

    private static float[] Round(float[] x, DType dtype) => dtype == DType.BF16
        ? x.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v))).ToArray()
        : x.Select(v => (float)(System.Half)v).ToArray();

    private static Tensor Upload(Device device, DType dtype, float[] values, params int[] shape)
    {
        using var wide = device.Upload(values, shape);
        return device.Convert(wide, dtype);
    }

    [TestCase(DType.F16, 40, 2, 19, 33)]
    [TestCase(DType.BF16, 40, 2, 19, 33)]
    [TestCase(DType.BF16, 64, 1, 24, 24)]
    public void HalfAttentionRoutesToTensorCores(DType dtype, int d, int heads, int lq, int lk)
    {
        var device = Emulated.Value;
        var rng = new Random(d + lq);
        int width = heads * d;
        var q = Round(Reference.Random(rng, lq * width), dtype);
        var k = Round(Reference.Random(rng, lk * width), dtype);
        var v = Round(Reference.Random(rng, lk * width), dtype);
        float scale = 1f / MathF.Sqrt(d);
        using var hq = Upload(device, dtype, q, 1, lq, width);
        using var hk = Upload(device, dtype, k, 1, lk, width);
        using var hv = Upload(device, dtype, v, 1, lk, width);
        using var ho = device.Allocate(dtype, 1, lq, width);
        long before = device.TensorCoreAttentionLaunches;
        device.Attention(hq, hk, hv, ho, heads, scale);
        Assert.That(device.TensorCoreAttentionLaunches, Is.EqualTo(before + 1), "the attention ran on the tensor-core kernel");

        using var cq = Cpu.Upload(q, 1, lq, width);
        using var ck = Cpu.Upload(k, 1, lk, width);
        using var cv = Cpu.Upload(v, 1, lk, width);
        using var co = Cpu.Allocate(1, lq, width);
        Cpu.Attention(cq, ck, cv, co, heads, scale);
        double error = Fixtures.RelativeError(ho.ToArray(), co.ToArray());
        TestContext.Out.WriteLine($"{dtype} attention d {d}: relative error {error:E2}");
        Assert.That(error, Is.LessThanOrEqualTo(dtype == DType.BF16 ? 1.6e-2 : 4e-3));
    }

    /// <summary>BF16 q, k, v with an F16 output is not one element type: the general kernel on float32 stand-ins.</summary>
    [Test]
    public void MixedTypesKeepGeneralKernel()
    {
        var device = Emulated.Value;
        var rng = new Random(3);
        const int d = 16, lq = 9, lk = 7;
        var q = Round(Reference.Random(rng, lq * d), DType.BF16);
        var k = Round(Reference.Random(rng, lk * d), DType.BF16);
        var v = Round(Reference.Random(rng, lk * d), DType.BF16);
        using var hq = Upload(device, DType.BF16, q, 1, lq, d);
        using var hk = Upload(device, DType.BF16, k, 1, lk, d);
        using var hv = Upload(device, DType.BF16, v, 1, lk, d);
        using var ho = device.Allocate(DType.F16, 1, lq, d);
        long before = device.TensorCoreAttentionLaunches;
        device.Attention(hq, hk, hv, ho, 1, 0.25f);
        Assert.That(device.TensorCoreAttentionLaunches, Is.EqualTo(before));
        using var cq = Cpu.Upload(q, 1, lq, d);
        using var ck = Cpu.Upload(k, 1, lk, d);
        using var cv = Cpu.Upload(v, 1, lk, d);
        using var co = Cpu.Allocate(1, lq, d);
        Cpu.Attention(cq, ck, cv, co, 1, 0.25f);
        Assert.That(Fixtures.RelativeError(ho.ToArray(), co.ToArray()), Is.LessThanOrEqualTo(2e-3));
    }
}
