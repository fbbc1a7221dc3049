using Engine.Gpu;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Core.Tests;

/// <summary>
/// The tensor-core GEMM (dense, GEGLU, implicit-GEMM convolution) in f16 and bf16 against an fp64 reference over
/// the same inputs rounded to the element type (the bias float32, as the models keep it), at small odd sizes that cut
/// every tile edge. Tolerance: max |out - ref| at most 2e-3 max |ref| in f16 (the output is rounded once: unit
/// roundoff 2^-11 = 4.9e-4; fp32 accumulation adds far less) and 8e-3 in bf16 (8 significand bits: unit roundoff
/// 2^-9 = 2.0e-3 relative to each output, and a residual added before the rounding).
/// </summary>
[TestFixtureSource(typeof(TensorCoreAccelerators), nameof(TensorCoreAccelerators.Kinds))]
public class TensorCoreGemmTests(string kind)
{
    private Accelerator Acc => TensorCoreAccelerators.Get(kind);

    private static double Tolerance(bool bf16) => bf16 ? 8e-3 : 2e-3;

    private static Half[] ToBits(float[] x, bool bf16) =>
        x.Select(v => Interop.IntAsFloat(bf16 ? DTypeExtensions.SingleToBFloat16(v) : BitConverter.HalfToUInt16Bits((System.Half)v))).ToArray();

    private static float[] FromBits(Half[] x, bool bf16) => x.Select(h => Interop.FloatAsInt(h)).Select(b =>
        bf16 ? DTypeExtensions.BFloat16ToSingle(b) : (float)BitConverter.UInt16BitsToHalf(b)).ToArray();

    private float[] Run<TA>(TA source, float[] a, float[] w, float[] bias, float[] residual, TcGemmParams p, int batch, int outCount, bool bf16, bool large)
        where TA : struct, ITileSourceA
    {
        using var da = Acc.Allocate1D(ToBits(a, bf16));
        using var dw = Acc.Allocate1D(ToBits(w, bf16));
        using var db = Acc.Allocate1D(bias.Length == 0 ? [0f] : bias);
        using var dr = Acc.Allocate1D(ToBits(residual.Length == 0 ? [0f] : residual, bf16));
        using var dout = Acc.Allocate1D<Half>(outCount);
        var (launch, shape) = (large, bf16) switch
        {
            (false, false) => (Load<GemmBlock64, TA, F16Element>(), TensorCoreGemmKernels.Shape<GemmBlock64>()),
            (false, true) => (Load<GemmBlock64, TA, BF16Element>(), TensorCoreGemmKernels.Shape<GemmBlock64>()),
            (true, false) => (Load<GemmBlock128, TA, F16Element>(), TensorCoreGemmKernels.Shape<GemmBlock128>()),
            _ => (Load<GemmBlock128, TA, BF16Element>(), TensorCoreGemmKernels.Shape<GemmBlock128>()),
        };
        if (kind == "cuda") Engine.Gpu.CudaLaunchLimits.AllowSharedBytes(launch, shape.SharedHalves * 2);
        int outCols = p.Geglu != 0 ? shape.BN / 2 : shape.BN;
        var grid = new Index3D((p.OutColumns + outCols - 1) / outCols, (p.M + shape.BM - 1) / shape.BM, batch);
        launch(new KernelConfig(grid, new Index3D(shape.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves)),
            source, GlobalHalf.Of(da.View), GlobalHalf.Of(dw.View), db.View, dr.View, dout.View, p);
        Acc.Synchronize();
        return FromBits(dout.GetAsArray1D(), bf16);
    }

    private Action<KernelConfig, TA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams> Load<TTile, TA, TElem>()
        where TTile : struct, IGemmBlock where TA : struct, ITileSourceA where TElem : struct, IMmaElement => kind == "cuda"
            ? PromotedKernels.LoadStreamKernel<TA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(Acc, TensorCoreGemmKernels.Gemm<PtxTensorCore, TTile, TA, TElem>)
            : Acc.LoadStreamKernel<TA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(TensorCoreGemmKernels.Gemm<EmulatedTensorCore, TTile, TA, TElem>);

    private static void AssertClose(double[] expected, float[] actual, bool bf16, string what)
    {
        double scale = expected.Max(Math.Abs), err = expected.Zip(actual, (e, x) => Math.Abs(e - x)).Max();
        TestContext.Out.WriteLine($"{what} {(bf16 ? "bf16" : "f16")}: max error {err / scale:E2} of max |ref|");
        Assert.That(err / scale, Is.LessThanOrEqualTo(Tolerance(bf16)), $"{what}: max error {err} of {scale}");
    }

    private static float[] R(float[] x, bool bf16) =>
        bf16 ? x.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v))).ToArray() : TensorCoreAccelerators.RoundToHalf(x);

    // Both block tiles: 64 x 64 (4 warps) and 128 x 128 (8 warps of 64 x 32); shapes with partial tiles in both.
    [TestCase(40, 72, 40, Activation.None, false, false, false, false)]
    [TestCase(33, 80, 40, Activation.SiLU, true, false, false, false)]
    [TestCase(65, 24, 16, Activation.None, true, true, false, false)]
    [TestCase(40, 72, 40, Activation.None, false, false, true, false)]
    [TestCase(33, 80, 40, Activation.SiLU, true, false, true, false)]
    [TestCase(65, 24, 16, Activation.None, true, true, true, false)]
    [TestCase(40, 72, 40, Activation.None, false, false, false, true)]
    [TestCase(150, 136, 40, Activation.SiLU, true, false, false, true)]
    [TestCase(65, 24, 16, Activation.None, true, true, true, true)]
    [TestCase(70, 136, 48, Activation.GeluTanh, true, true, true, true)]
    // Seven and five slabs (the last partial in the first): the three-stage ring wraps.
    [TestCase(40, 72, 200, Activation.None, true, false, false, false)]
    [TestCase(130, 72, 136, Activation.SiLU, true, true, false, true)]
    public void DenseMatchesReference(int m, int n, int k, Activation act, bool hasBias, bool hasResidual, bool bf16, bool large)
    {
        const int batch = 2;
        var a = R(TensorCoreAccelerators.Random(batch * m * k, 11), bf16);
        var w = R(TensorCoreAccelerators.Random(n * k, 12), bf16);
        var bias = hasBias ? TensorCoreAccelerators.Random(n, 13) : []; // float32, as the models keep biases
        var residual = hasResidual ? R(TensorCoreAccelerators.Random(batch * m * n, 14), bf16) : [];
        var p = new TcGemmParams { M = m, N = n, K = k, StrideA = (long)m * k, StrideW = 0, StrideC = (long)m * n, HasBias = hasBias ? 1 : 0,
            HasResidual = hasResidual ? 1 : 0, Activation = act, Alpha = 0.5f };
        var got = Run(new DenseA { M = m, K = k, Stride = p.StrideA }, a, w, bias, residual, p, batch, batch * m * n, bf16, large);
        var expected = new double[batch * m * n];
        for (int b = 0; b < batch; b++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int q = 0; q < k; q++) s += (double)a[(b * m + i) * k + q] * w[j * k + q];
                    double y = ScalarMath.Activate((float)(0.5 * s + (hasBias ? bias[j] : 0)), act);
                    expected[(b * m + i) * n + j] = y + (hasResidual ? residual[(b * m + i) * n + j] : 0);
                }
        AssertClose(expected, got, bf16, $"GEMM {m}x{n}x{k}");
    }

    [TestCase(false, false)]
    [TestCase(true, false)]
    [TestCase(false, true)]
    [TestCase(true, true)]
    public void GegluMatchesReference(bool bf16, bool large)
    {
        int m = large ? 133 : 37, inner = large ? 72 : 40, k = 24;
        var a = R(TensorCoreAccelerators.Random(m * k, 21), bf16);
        var w = R(TensorCoreAccelerators.Random(2 * inner * k, 22), bf16);
        var bias = R(TensorCoreAccelerators.Random(2 * inner, 23), bf16);
        var p = new TcGemmParams { M = m, N = 2 * inner, K = k, StrideA = (long)m * k, StrideC = (long)m * inner, HasBias = 1, Geglu = 1, Alpha = 1f };
        var got = Run(new DenseA { M = m, K = k, Stride = p.StrideA }, a, w, bias, [], p, 1, m * inner, bf16, large);
        var expected = new double[m * inner];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < inner; j++)
            {
                double h = bias[j], g = bias[inner + j];
                for (int q = 0; q < k; q++) { h += (double)a[i * k + q] * w[j * k + q]; g += (double)a[i * k + q] * w[(inner + j) * k + q]; }
                expected[i * inner + j] = h * ScalarMath.GeluErf((float)g);
            }
        AssertClose(expected, got, bf16, "GEGLU");
    }

    [TestCase(1, false)]
    [TestCase(2, false)]
    [TestCase(1, true)]
    public void Conv3x3MatchesReference(int stride, bool large)
    {
        const int batch = 1, cin = 8, cout = 24, h = 5, wd = 6, pad = 1, ks = 3;
        int ho = (h + 2 * pad - ks) / stride + 1, wo = (wd + 2 * pad - ks) / stride + 1, kk = ks * ks * cin;
        var x = R(TensorCoreAccelerators.Random(batch * h * wd * cin, 31), false);        // [N, H, W, Cin]
        var w = R(TensorCoreAccelerators.Random(cout * kk, 32, 0.3f), false);             // [Cout, 3, 3, Cin]
        var bias = R(TensorCoreAccelerators.Random(cout, 33), false);
        var p = new TcGemmParams { M = ho * wo, N = cout, K = kk, StrideC = (long)ho * wo * cout, HasBias = 1, Alpha = 1f };
        var source = new ConvA { Cin = cin, H = h, W = wd, Kw = ks, Wo = wo, Stride = stride, Padding = pad, Pixels = ho * wo, K = kk };
        var got = Run(source, x, w, bias, [], p, batch, batch * ho * wo * cout, false, large);
        var expected = new double[batch * ho * wo * cout];
        for (int b = 0; b < batch; b++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                    for (int co = 0; co < cout; co++)
                    {
                        double s = bias[co];
                        for (int ky = 0; ky < ks; ky++)
                            for (int kx = 0; kx < ks; kx++)
                            {
                                int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                for (int ci = 0; ci < cin; ci++)
                                    s += (double)x[((b * h + iy) * wd + ix) * cin + ci] * w[((co * ks + ky) * ks + kx) * cin + ci];
                            }
                        expected[((b * ho + oy) * wo + ox) * cout + co] = s;
                    }
        AssertClose(expected, got, false, $"conv stride {stride}");
    }
}
