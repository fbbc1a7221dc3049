using Engine.Gpu;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Core.Tests;

/// <summary>
/// Each tensor-core instruction helper against a plain computation of its documented result: the
/// mma fragments loaded by the PTX ISA's per-lane tables and multiplied must equal the matrix product
/// (f16 and bf16; exact up to fp32 summation order, tolerance 1e-5 relative), a fragment loaded with
/// a wrong index must not, ldmatrix (x1/x2/x4, .trans) must hand each lane the documented elements
/// (exactly), cp.async must copy or zero-fill 16 bytes and the 128-bit load return 8 halves. On the
/// CPU accelerator this checks the emulation; on CUDA (ENGINE_TEST_CUDA=1) the PTX bodies.
/// </summary>
[TestFixtureSource(typeof(TensorCoreAccelerators), nameof(TensorCoreAccelerators.Kinds))]
public class TensorCoreOpsTests(string kind)
{
    private Accelerator Acc => TensorCoreAccelerators.Get(kind);
    private bool Cuda => kind == "cuda";

    private static uint Pair(ArrayView<Half> v, int i) => Interop.FloatAsInt(v[i]) | ((uint)Interop.FloatAsInt(v[i + 1]) << 16);

    /// <summary>
    /// One warp: C[16, 8] = A[16, 16] W[8, 16]^T, fragments read from global memory by the documented
    /// layout; <paramref name="wrong"/> = 1 swaps A's registers 1 and 2 (rows g + 8 and columns + 8),
    /// 2 reads B's column from lane t instead of g.
    /// </summary>
    internal static void MmaKernel<T>(ArrayView<Half> a, ArrayView<Half> w, ArrayView<float> c, int bf16, int wrong) where T : struct, ITensorCore
    {
        int lane = Group.IdxX, g = lane >> 2, t = lane & 3;
        var fa = new FragA { R0 = Pair(a, g * 16 + 2 * t), R1 = Pair(a, (g + 8) * 16 + 2 * t), R2 = Pair(a, g * 16 + 2 * t + 8), R3 = Pair(a, (g + 8) * 16 + 2 * t + 8) };
        if (wrong == 1) fa = new FragA { R0 = fa.R0, R1 = fa.R2, R2 = fa.R1, R3 = fa.R3 };
        int n = wrong == 2 ? t : g;
        var fb = new FragB { R0 = Pair(w, n * 16 + 2 * t), R1 = Pair(w, n * 16 + 2 * t + 8) };
        var acc = new MmaAcc { C0 = 1f, C1 = 1f, C2 = 1f, C3 = 1f };
        if (bf16 != 0) default(T).MmaBF16(ref acc, fa, fb);
        else default(T).MmaF16(ref acc, fa, fb);
        c[g * 8 + 2 * t] = acc.C0;
        c[g * 8 + 2 * t + 1] = acc.C1;
        c[(g + 8) * 8 + 2 * t] = acc.C2;
        c[(g + 8) * 8 + 2 * t + 1] = acc.C3;
    }

    private static ushort Bf16(float v) => ScalarMath.ToBFloat16(v);

    private float[] RunMma(float[] a, float[] w, bool bf16, int wrong)
    {
        Half[] Bits(float[] x) => x.Select(v => Interop.IntAsFloat(bf16 ? Bf16(v) : BitConverter.HalfToUInt16Bits((System.Half)v))).ToArray();
        using var da = Acc.Allocate1D(Bits(a));
        using var dw = Acc.Allocate1D(Bits(w));
        using var dc = Acc.Allocate1D<float>(128);
        var k = Cuda ? PromotedKernels.LoadStreamKernel<ArrayView<Half>, ArrayView<Half>, ArrayView<float>, int, int>(Acc, MmaKernel<PtxTensorCore>)
            : Acc.LoadStreamKernel<ArrayView<Half>, ArrayView<Half>, ArrayView<float>, int, int>(MmaKernel<EmulatedTensorCore>);
        k(new KernelConfig(1, 32), da.View, dw.View, dc.View, bf16 ? 1 : 0, wrong);
        return dc.GetAsArray1D();
    }

    private static float[] Product(float[] a, float[] w, bool bf16)
    {
        float R(float v) => bf16 ? ScalarMath.FromBFloat16(Bf16(v)) : (float)(System.Half)v;
        var c = new float[128];
        for (int m = 0; m < 16; m++)
            for (int n = 0; n < 8; n++)
            {
                double s = 1;
                for (int k = 0; k < 16; k++) s += (double)R(a[m * 16 + k]) * R(w[n * 16 + k]);
                c[m * 8 + n] = (float)s;
            }
        return c;
    }

    private static double RelErr(float[] expected, float[] actual) =>
        expected.Zip(actual, (e, x) => Math.Abs(e - x)).Max() / expected.Max(Math.Abs);

    [TestCase(false)]
    [TestCase(true)]
    public void MmaMatchesMatrixProduct(bool bf16)
    {
        var a = TensorCoreAccelerators.Random(256, 1);
        var w = TensorCoreAccelerators.Random(128, 2);
        Assert.That(RelErr(Product(a, w, bf16), RunMma(a, w, bf16, 0)), Is.LessThan(1e-5));
    }

    [TestCase(1)]
    [TestCase(2)]
    public void MmaWithAWrongFragmentIndexFails(int wrong)
    {
        var a = TensorCoreAccelerators.Random(256, 3);
        var w = TensorCoreAccelerators.Random(128, 4);
        Assert.That(RelErr(Product(a, w, false), RunMma(a, w, false, wrong)), Is.GreaterThan(1e-2));
    }

    /// <summary>
    /// Shared memory holds four 8 x 8 matrices, matrix i at rows 8i..8i+7 of a [32, 24]-stride tile
    /// (padding as the kernels use); lane l gives row l's offset; out[l * 4 + i] = register i.
    /// </summary>
    internal static void LdMatrixKernel<T>(ArrayView<ushort> src, ArrayView<uint> output, int variant) where T : struct, ITensorCore
    {
        int lane = Group.IdxX;
        var shared = SharedMemory.GetDynamic<ushort>();
        for (int e = lane; e < 32 * 24; e += 32) shared[e] = src[e];
        Group.Barrier();
        int row = lane * 24;
        uint r0 = 0, r1 = 0, r2 = 0, r3 = 0;
        switch (variant)
        {
            case 0: r0 = default(T).LdMatrixX1(shared, row); break;
            case 1: r0 = default(T).LdMatrixX1Trans(shared, row); break;
            case 2: default(T).LdMatrixX2(shared, row, out r0, out r1); break;
            case 3: default(T).LdMatrixX2Trans(shared, row, out r0, out r1); break;
            case 4: { var f = default(T).LdMatrixX4(shared, row); r0 = f.R0; r1 = f.R1; r2 = f.R2; r3 = f.R3; break; }
            default: { var f = default(T).LdMatrixX4Trans(shared, row); r0 = f.R0; r1 = f.R1; r2 = f.R2; r3 = f.R3; break; }
        }
        output[lane * 4] = r0;
        output[lane * 4 + 1] = r1;
        output[lane * 4 + 2] = r2;
        output[lane * 4 + 3] = r3;
    }

    [TestCase(0, 1, false)]
    [TestCase(1, 1, true)]
    [TestCase(2, 2, false)]
    [TestCase(3, 2, true)]
    [TestCase(4, 4, false)]
    [TestCase(5, 4, true)]
    public void LdMatrixGivesEachLaneTheDocumentedElements(int variant, int matrices, bool trans)
    {
        // Distinct 16-bit values: element (row, col) of the tile holds row * 24 + col + 1.
        var src = Enumerable.Range(0, 32 * 24).Select(i => (ushort)(i + 1)).ToArray();
        using var ds = Acc.Allocate1D(src);
        using var dout = Acc.Allocate1D<uint>(128);
        var k = Cuda ? PromotedKernels.LoadStreamKernel<ArrayView<ushort>, ArrayView<uint>, int>(Acc, LdMatrixKernel<PtxTensorCore>)
            : Acc.LoadStreamKernel<ArrayView<ushort>, ArrayView<uint>, int>(LdMatrixKernel<EmulatedTensorCore>);
        k(new KernelConfig(1, 32, SharedMemoryConfig.RequestDynamic<ushort>(32 * 24)), ds.View, dout.View, variant);
        var got = dout.GetAsArray1D();
        for (int lane = 0; lane < 32; lane++)
            for (int i = 0; i < matrices; i++)
            {
                // Documented: without .trans lane l holds (row l/4, cols 2(l%4), +1) of matrix i;
                // with .trans (rows 2(l%4), 2(l%4)+1, col l/4).
                int q = lane & 3, r = lane >> 2, rowBase = 8 * i;
                uint lo = trans ? src[(rowBase + 2 * q) * 24 + r] : src[(rowBase + r) * 24 + 2 * q];
                uint hi = trans ? src[(rowBase + 2 * q + 1) * 24 + r] : src[(rowBase + r) * 24 + 2 * q + 1];
                Assert.That(got[lane * 4 + i], Is.EqualTo(lo | (hi << 16)), $"lane {lane} register {i}");
            }
    }

    /// <summary>Lane l copies chunk l (8 halves) into shared memory, zero-filling odd chunks; then the 128-bit load of chunk l.</summary>
    internal static void CopyKernel<T>(GlobalHalf src, ArrayView<ushort> copied, ArrayView<uint> loaded) where T : struct, ITensorCore
    {
        int lane = Group.IdxX;
        var shared = SharedMemory.GetDynamic<ushort>();
        default(T).CpAsync16(shared, lane * 8, src, lane * 8L, (lane & 1) == 0);
        default(T).CpAsyncCommit();
        default(T).CpAsyncWaitAll();
        Group.Barrier();
        for (int e = lane; e < 256; e += 32) copied[e] = shared[(e + 8) & 255];
        var f = default(T).Load128(src, lane * 8L);
        loaded[lane * 4] = f.R0;
        loaded[lane * 4 + 1] = f.R1;
        loaded[lane * 4 + 2] = f.R2;
        loaded[lane * 4 + 3] = f.R3;
    }

    [Test]
    public void CpAsyncCopiesOrZeroFillsAndLoad128ReadsEightHalves()
    {
        var bits = Enumerable.Range(0, 256).Select(i => (ushort)(i * 7 + 3)).ToArray();
        using var ds = Acc.Allocate1D(bits.Select(b => Interop.IntAsFloat(b)).ToArray());
        using var dc = Acc.Allocate1D<ushort>(256);
        using var dl = Acc.Allocate1D<uint>(128);
        var k = Cuda ? PromotedKernels.LoadStreamKernel<GlobalHalf, ArrayView<ushort>, ArrayView<uint>>(Acc, CopyKernel<PtxTensorCore>)
            : Acc.LoadStreamKernel<GlobalHalf, ArrayView<ushort>, ArrayView<uint>>(CopyKernel<EmulatedTensorCore>);
        k(new KernelConfig(1, 32, SharedMemoryConfig.RequestDynamic<ushort>(256)), GlobalHalf.Of(ds.View), dc.View, dl.View);
        var copied = dc.GetAsArray1D();
        var loaded = dl.GetAsArray1D();
        for (int e = 0; e < 256; e++)
        {
            int s = (e + 8) & 255;
            Assert.That(copied[e], Is.EqualTo((s / 8) % 2 == 0 ? bits[s] : 0), $"shared element {s}");
        }
        for (int i = 0; i < 128; i++)
            Assert.That(loaded[i], Is.EqualTo(bits[2 * i] | ((uint)bits[2 * i + 1] << 16)), $"register {i}");
    }

    internal static void PackKernel<T>(ArrayView<float> x, ArrayView<uint> output) where T : struct, ITensorCore
    {
        int lane = Group.IdxX;
        output[lane] = default(T).PackF16(x[2 * lane], x[2 * lane + 1]);
        output[32 + lane] = default(T).PackBF16(x[2 * lane], x[2 * lane + 1]);
    }

    [Test]
    public void PackRoundsToNearestEvenWithTheFirstValueLow()
    {
        var x = TensorCoreAccelerators.Random(64, 5, 100f);
        using var dx = Acc.Allocate1D(x);
        using var dout = Acc.Allocate1D<uint>(64);
        (Cuda ? PromotedKernels.LoadStreamKernel<ArrayView<float>, ArrayView<uint>>(Acc, PackKernel<PtxTensorCore>) : Acc.LoadStreamKernel<ArrayView<float>, ArrayView<uint>>(PackKernel<EmulatedTensorCore>))(new KernelConfig(1, 32), dx.View, dout.View);
        var got = dout.GetAsArray1D();
        for (int i = 0; i < 32; i++)
        {
            Assert.That(got[i], Is.EqualTo(BitConverter.HalfToUInt16Bits((System.Half)x[2 * i]) | ((uint)BitConverter.HalfToUInt16Bits((System.Half)x[2 * i + 1]) << 16)));
            Assert.That(got[32 + i], Is.EqualTo(Bf16(x[2 * i]) | ((uint)Bf16(x[2 * i + 1]) << 16)));
        }
    }

    internal static void Exp2Kernel<T>(ArrayView<float> x, ArrayView<float> output) where T : struct, ITensorCore
    {
        int lane = Group.IdxX;
        output[lane] = default(T).Exp2(x[lane]);
        output[32 + lane] = default(T).Exp2(x[32 + lane]);
    }

    /// <summary>
    /// ex2.approx.ftz: within 2 units in the last place of 2^x (the PTX ISA's bound, 2^-22 relative), zero for results
    /// below 2^-126 (flushed, not subnormal) and for -inf, exact at integers.
    /// </summary>
    [Test]
    public void Exp2IsWithinTwoUlpAndFlushesSubnormalResults()
    {
        var x = TensorCoreAccelerators.Random(64, 6, 60f);
        float[] edges = [float.NegativeInfinity, -200f, -127f, -126.5f, -125.5f, -1e-7f, 0f, 3f, -3f, 1e-7f, 0.5f, -0.5f];
        edges.CopyTo(x, 0);
        using var dx = Acc.Allocate1D(x);
        using var dout = Acc.Allocate1D<float>(64);
        (Cuda ? PromotedKernels.LoadStreamKernel<ArrayView<float>, ArrayView<float>>(Acc, Exp2Kernel<PtxTensorCore>) : Acc.LoadStreamKernel<ArrayView<float>, ArrayView<float>>(Exp2Kernel<EmulatedTensorCore>))(new KernelConfig(1, 32), dx.View, dout.View);
        var got = dout.GetAsArray1D();
        for (int i = 0; i < 64; i++)
        {
            double exact = Math.Pow(2, x[i]);
            if (exact < 1.1754943508222875e-38)
                Assert.That(got[i], Is.EqualTo(0f), $"2^{x[i]} flushes to zero");
            else if (x[i] == MathF.Round(x[i]))
                Assert.That(got[i], Is.EqualTo((float)exact), $"2^{x[i]} is exact");
            else
                Assert.That(Math.Abs(got[i] - exact), Is.LessThanOrEqualTo(2.5e-7 * exact), $"2^{x[i]}");
        }
    }
}
