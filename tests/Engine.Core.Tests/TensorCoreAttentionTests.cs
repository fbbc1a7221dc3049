using Engine.Gpu;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;

namespace Engine.Core.Tests;

/// <summary>
/// The tensor-core flash attention against an fp64 softmax(q k^T scale) v over the same inputs rounded to the
/// element type: every head width the models use (40, 64, 72, 80, 128, 160) and two others, each on the kernel
/// compiled for it, and three on the kernel that reads the width at run time; self and cross attention, the causal
/// mask, lengths that cut the 64-row and 32-key blocks; in f16 and, for four of those shapes, in bf16.
/// Tolerance: max |out - ref| at most 4e-3 max |ref| in f16 (P is rounded to f16 for the second product and the
/// output to f16: 2^-11 each) and 1.6e-2 in bf16 (the same two roundings at 2^-9, four times coarser).
/// </summary>
[TestFixtureSource(typeof(TensorCoreAccelerators), nameof(TensorCoreAccelerators.Kinds))]
public class TensorCoreAttentionTests(string kind)
{
    private Accelerator Acc => TensorCoreAccelerators.Get(kind);

    private static Half[] ToBits(float[] x, bool bf16) =>
        x.Select(v => Interop.IntAsFloat(bf16 ? DTypeExtensions.SingleToBFloat16(v) : BitConverter.HalfToUInt16Bits((System.Half)v))).ToArray();

    private static float[] Round(float[] x, bool bf16) =>
        bf16 ? x.Select(v => DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v))).ToArray() : TensorCoreAccelerators.RoundToHalf(x);

    private readonly struct Loader(Accelerator acc, string kind, bool bf16)
        : IHeadDimVisitor<Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>>
    {
        public Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams> Visit<TDim>() where TDim : struct, IHeadDim =>
            bf16 ? Load<BF16Element, TDim>() : Load<F16Element, TDim>();

        private Action<KernelConfig, GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams> Load<TElem, TDim>()
            where TElem : struct, IMmaElement where TDim : struct, IHeadDim => kind == "cuda"
            ? PromotedKernels.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(acc, TensorCoreAttentionKernels.FlashAttention<PtxTensorCore, TElem, TDim>, LaunchBounds.ForAttention(default(TDim)))
            : acc.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(TensorCoreAttentionKernels.FlashAttention<EmulatedTensorCore, TElem, TDim>);
    }

    // Each width on the kernel compiled for it (ForHeadDim; 48 and 96 have none, so they take AnyHeadDim's), and three
    // widths on AnyHeadDim's kernel, which reads the width at run time. Causal 40 x 50: the diagonal (shifted by 10)
    // ends a key block inside a warp's rows, so the choice of blocks to mask is checked row by row.
    [TestCase(40, 1, 2, 37, 37, false, false, false)]
    [TestCase(64, 2, 1, 20, 45, false, false, false)]
    [TestCase(72, 1, 2, 33, 70, false, false, false)]
    [TestCase(80, 1, 1, 40, 40, true, false, false)]
    [TestCase(128, 1, 1, 18, 9, false, false, false)]
    [TestCase(160, 1, 1, 17, 17, true, false, false)]
    [TestCase(48, 1, 1, 65, 70, true, false, false)]
    [TestCase(64, 1, 1, 40, 50, true, false, false)]
    [TestCase(96, 1, 1, 21, 96, false, false, false)]
    [TestCase(40, 1, 2, 37, 37, false, true, false)]
    [TestCase(64, 2, 1, 20, 45, false, true, false)]
    [TestCase(80, 1, 1, 40, 40, true, true, false)]
    [TestCase(40, 1, 1, 37, 37, true, false, true)]
    [TestCase(64, 1, 1, 20, 45, false, false, true)]
    [TestCase(160, 1, 1, 17, 33, false, true, true)]
    public void MatchesReference(int d, int batch, int heads, int lq, int lk, bool causal, bool bf16, bool anyWidth)
    {
        int width = heads * d;
        var q = Round(TensorCoreAccelerators.Random(batch * lq * width, 41), bf16);
        var k = Round(TensorCoreAccelerators.Random(batch * lk * width, 42), bf16);
        var v = Round(TensorCoreAccelerators.Random(batch * lk * width, 43), bf16);
        float scale = 1f / MathF.Sqrt(d);
        using var dq = Acc.Allocate1D(ToBits(q, bf16));
        using var dk = Acc.Allocate1D(ToBits(k, bf16));
        using var dv = Acc.Allocate1D(ToBits(v, bf16));
        using var dout = Acc.Allocate1D<Half>(batch * lq * width);
        var p = new TcAttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, ScaleLog2 = scale * 1.4426950408889634f, Causal = causal ? 1 : 0 };
        var loader = new Loader(Acc, kind, bf16);
        var launch = anyWidth ? loader.Visit<AnyHeadDim>() : TensorCoreAttentionKernels.ForHeadDim(d, loader);
        var grid = new Index3D((lq + TensorCoreAttentionKernels.Rows - 1) / TensorCoreAttentionKernels.Rows, batch * heads, 1);
        var config = new KernelConfig(grid, new Index3D(TensorCoreAttentionKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreAttentionKernels.SharedHalves(d)));
        if (kind == "cuda") Engine.Gpu.CudaLaunchLimits.AllowSharedBytes(launch, TensorCoreAttentionKernels.SharedHalves(d) * 2);
        launch(config, GlobalHalf.Of(dq.View), GlobalHalf.Of(dk.View), GlobalHalf.Of(dv.View), dout.View, p);
        Acc.Synchronize();
        var got = dout.GetAsArray1D().Select(h => Interop.FloatAsInt(h))
            .Select(b => bf16 ? DTypeExtensions.BFloat16ToSingle(b) : (float)BitConverter.UInt16BitsToHalf(b)).ToArray();

        double maxRef = 0, maxErr = 0;
        var s = new double[lk];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < lq; i++)
                {
                    double m = double.NegativeInfinity;
                    for (int j = 0; j < lk; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < d; e++) dot += (double)q[(b * lq + i) * width + h * d + e] * k[(b * lk + j) * width + h * d + e];
                        s[j] = causal && j > i + lk - lq ? double.NegativeInfinity : dot * scale;
                        m = Math.Max(m, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < lk; j++) sum += s[j] = Math.Exp(s[j] - m);
                    for (int e = 0; e < d; e++)
                    {
                        double o = 0;
                        for (int j = 0; j < lk; j++) o += s[j] * v[(b * lk + j) * width + h * d + e];
                        o /= sum;
                        int at = (b * lq + i) * width + h * d + e;
                        maxRef = Math.Max(maxRef, Math.Abs(o));
                        maxErr = Math.Max(maxErr, Math.Abs(o - got[at]));
                    }
                }
        TestContext.Out.WriteLine($"d {d}{(anyWidth ? " (any width)" : "")} {(bf16 ? "bf16" : "f16")}: max error {maxErr / maxRef:E2} of max |ref|");
        Assert.That(maxErr / maxRef, Is.LessThanOrEqualTo(bf16 ? 1.6e-2 : 4e-3), $"d {d}: max error {maxErr} of {maxRef}");
    }
}
