using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The in-register widening of half weights that the GEMM packers use (<see cref="HalfWidening"/>,
/// <see cref="Transpose8x8.RunHalf"/>): every one of the 65536 F16 bit patterns (zeros, subnormals, normals, infinities,
/// NaNs) against the runtime's own Half to float conversion, BF16 patterns against the shift, and the 8 x 8 transpose.
/// </summary>
[TestFixture]
public unsafe class HalfWideningTests
{
    [Test]
    public void EveryF16PatternWidensExactly()
    {
        if (!Avx2.IsSupported) Assert.Ignore("the in-register widening needs AVX2; the packers then take the staged path");
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)i;
        var got = new float[8];
        fixed (ushort* src = bits)
        fixed (float* dst = got)
            for (int i = 0; i < bits.Length; i += 8)
            {
                HalfWidening.Widen8(src + i, bf16: false).Store(dst);
                for (int j = 0; j < 8; j++)
                {
                    float expected = (float)BitConverter.UInt16BitsToHalf(bits[i + j]);
                    if (float.IsNaN(expected)) Assert.That(float.IsNaN(got[j]), $"F16 0x{i + j:X4} is a NaN, widened to {got[j]}");
                    else Assert.That(BitConverter.SingleToInt32Bits(got[j]), Is.EqualTo(BitConverter.SingleToInt32Bits(expected)),
                        $"F16 0x{i + j:X4} ({expected:R}) widened to {got[j]:R}");
                }
            }
    }

    [Test]
    public void Bf16PatternsWidenByShift()
    {
        if (!Avx2.IsSupported) Assert.Ignore("the in-register widening needs AVX2; the packers then take the staged path");
        var bits = new ushort[65536];
        for (int i = 0; i < bits.Length; i++) bits[i] = (ushort)(i * 7919);
        var got = new float[8];
        fixed (ushort* src = bits)
        fixed (float* dst = got)
            for (int i = 0; i < bits.Length; i += 8)
            {
                HalfWidening.Widen8(src + i, bf16: true).Store(dst);
                for (int j = 0; j < 8; j++)
                    Assert.That(BitConverter.SingleToInt32Bits(got[j]), Is.EqualTo(bits[i + j] << 16), $"BF16 0x{bits[i + j]:X4}");
            }
    }

    [Test]
    public void TransposeWidensAndScalesAnEightByEightBlock([Values] bool bf16)
    {
        if (!Avx2.IsSupported) Assert.Ignore("the in-register widening needs AVX2; the packers then take the staged path");
        const int stride = 11, dstStride = 13;
        var rng = new Random(bf16 ? 2 : 1);
        var src = new ushort[8 * stride];
        for (int i = 0; i < src.Length; i++)
        {
            float v = (float)(rng.NextDouble() * 4 - 2);
            src[i] = bf16 ? DTypeExtensions.SingleToBFloat16(v) : BitConverter.HalfToUInt16Bits((Half)v);
        }
        var dst = new float[8 * dstStride];
        fixed (ushort* s = src)
        fixed (float* d = dst)
            Transpose8x8.RunHalf(s, stride, bf16, d, dstStride, Vector256.Create(0.75f));
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < 8; c++)
            {
                ushort h = src[c * stride + r];
                float value = bf16 ? DTypeExtensions.BFloat16ToSingle(h) : (float)BitConverter.UInt16BitsToHalf(h);
                Assert.That(dst[r * dstStride + c], Is.EqualTo(0.75f * value), $"row {r}, column {c}");
            }
    }
}
