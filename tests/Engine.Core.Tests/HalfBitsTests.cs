using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Core.Tests;

/// <summary>
/// <see cref="HalfBits"/> in a kernel against <see cref="ScalarMath"/>'s integer conversions: every binary16 value widened,
/// and floats at every rounding boundary (each half value, the midpoints between neighbours and one float ulp to either
/// side, the subnormal range, overflow, signed zeros, infinities) plus random floats over the whole exponent range
/// rounded. The bits must match except for NaN, which must stay NaN. On the CPU accelerator this holds the kernel to the
/// integer path (ILGPU.Half's own conversion truncates there); on CUDA (<c>ENGINE_TEST_CUDA=1</c>) it checks that the PTX
/// conversions round exactly as the integer code.
/// </summary>
[TestFixtureSource(typeof(TensorCoreAccelerators), nameof(TensorCoreAccelerators.Kinds))]
public class HalfBitsTests(string kind)
{
    private Accelerator Acc => TensorCoreAccelerators.Get(kind);

    private static void Round(Index1D i, ArrayView<float> src, ArrayView<ushort> dst) => dst[i] = HalfBits.FromFloat(src[i]);

    private static void Widen(Index1D i, ArrayView<ushort> src, ArrayView<float> dst) => dst[i] = HalfBits.ToFloat(src[i]);

    [Test]
    public void EveryHalfWidensExactly()
    {
        var bits = Enumerable.Range(0, 65536).Select(b => (ushort)b).ToArray();
        using var src = Acc.Allocate1D(bits);
        using var dst = Acc.Allocate1D<float>(bits.Length);
        Acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<ushort>, ArrayView<float>>(Widen)(bits.Length, src.View, dst.View);
        var got = dst.GetAsArray1D();
        for (int i = 0; i < bits.Length; i++)
        {
            float want = ScalarMath.FromHalfBits(bits[i]);
            if (float.IsNaN(want)) Assert.That(float.IsNaN(got[i]), $"0x{bits[i]:X4} widened to {got[i]}, not NaN");
            else Assert.That(BitConverter.SingleToInt32Bits(got[i]), Is.EqualTo(BitConverter.SingleToInt32Bits(want)), $"0x{bits[i]:X4}");
        }
    }

    [Test]
    public void RoundsToNearestEvenAtEveryBoundary()
    {
        var values = new List<float>();
        for (int b = 0; b < 0x7C00; b++)
        {
            float h = ScalarMath.FromHalfBits((ushort)b), next = ScalarMath.FromHalfBits((ushort)(b + 1));
            float mid = (float)(((double)h + next) / 2); // exact: a float holds every half midpoint
            values.AddRange([h, mid, MathF.BitDecrement(mid), MathF.BitIncrement(mid)]);
        }
        values.AddRange([65504f, 65519.996f, 65520f, 65536f, 1e30f, float.MaxValue, float.PositiveInfinity, float.Epsilon, 1e-10f, 2.98e-8f, 2.9802322e-8f, 0f, float.NaN]);
        var rng = new Random(7);
        for (int i = 0; i < 100_000; i++) values.Add(BitConverter.Int32BitsToSingle(rng.Next()));
        var all = values.Concat(values.Select(v => -v)).ToArray();

        using var src = Acc.Allocate1D(all);
        using var dst = Acc.Allocate1D<ushort>(all.Length);
        Acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<ushort>>(Round)(all.Length, src.View, dst.View);
        var got = dst.GetAsArray1D();
        int wrong = 0;
        string first = "";
        for (int i = 0; i < all.Length; i++)
        {
            ushort want = ScalarMath.ToHalfBits(all[i]);
            bool ok = float.IsNaN(all[i]) ? (got[i] & 0x7C00) == 0x7C00 && (got[i] & 0x3FF) != 0 : got[i] == want;
            if (ok) continue;
            if (wrong++ == 0) first = $"{all[i]:R} (0x{BitConverter.SingleToInt32Bits(all[i]):X8}) -> 0x{got[i]:X4}, want 0x{want:X4}";
        }
        Assert.That(wrong, Is.Zero, $"{wrong} of {all.Length} rounded differently; first {first}");
    }
}
