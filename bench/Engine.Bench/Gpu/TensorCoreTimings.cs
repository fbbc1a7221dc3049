using System.Diagnostics;
using System.Text;
using Engine.Gpu;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Half = ILGPU.Half;

namespace Engine.Bench.Gpu;

/// <summary>
/// <c>Engine.Bench --tensor-cores [--out FILE]</c>: times the tensor-core kernels at the shapes of issue 16
/// on the first CUDA device (warm-up, then the median of timed launches, each synchronised), with
/// ILGPU.Algorithms' cuBLAS Hgemm (fp16 accumulation) as the in-process GEMM peer, and prints each kernel's
/// registers and local memory per thread as the driver compiled it. Writes a markdown table (rows: op, shape,
/// median ms, TFLOP/s; the convolution both on the channels-last kernel and on the NCHW kernel the device routes
/// F16 and BF16 convolutions to; bf16 rows for attention at d 64, the GEMM and the NCHW convolution, named
/// "... bf16", as the device routes BF16 activations to the same kernels with the bf16 mma) that
/// bench/gpu/tensor_cores.sh joins with the PyTorch fp16 / bf16 peers. Kept outside
/// BenchmarkDotNet so the whole set fits a few minutes of device time.
/// </summary>
public static class TensorCoreTimings
{
    private delegate void Launch();

    public static int Run(string? outFile)
    {
        using var context = Context.Create(b => b.Cuda().EnableAlgorithms().Optimize(OptimizationLevel.O2));
        if (context.GetCudaDevices().Count == 0)
        {
            Console.WriteLine("tensor-core timings: no CUDA device");
            return 1;
        }
        using var acc = context.CreateCudaAccelerator(0);
        var rows = new List<string>();
        var text = new StringBuilder();
        text.AppendLine($"Tensor-core kernels on {acc.Name}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
        text.AppendLine();
        text.AppendLine("| op | shape | median ms | TFLOP/s | registers | local bytes |");
        text.AppendLine("|---|---|---:|---:|---:|---:|");
        void Row(string op, string shape, double ms, double flop, (int, int)? info) =>
            text.AppendLine($"| {op} | {shape} | {ms:F4} | {flop / (ms * 1e-3) / 1e12:F1} | {info?.Item1.ToString() ?? "-"} | {info?.Item2.ToString() ?? "-"} |");

        // "attention" rows: the kernel compiled for the head width, as the device routes it; "attention any-width": the
        // kernel that reads the width at run time (what widths without their own kernel take), for the difference;
        // "attention unbounded": the routed kernel without its launch bounds (d 40 and 72, where the bounds buy a block per
        // multiprocessor), to time that choice.
        foreach (var (d, bf16, any, unbounded) in new[] { (64, false, false, false), (80, false, false, false), (160, false, false, false),
            (40, false, false, false), (128, false, false, false), (72, false, false, false), (64, true, false, false), (64, false, true, false),
            (160, false, true, false), (40, false, false, true), (72, false, false, true) })
        {
            const int batch = 2, heads = 8, length = 4096;
            var timing = new AttentionTiming(acc, batch, heads, length, d, bf16, !unbounded);
            var (ms, info) = any ? timing.Visit<AnyHeadDim>() : TensorCoreAttentionKernels.ForHeadDim(d, timing);
            string op = any ? "attention any-width" : unbounded ? "attention unbounded" : bf16 ? "attention bf16" : "attention";
            Row(op, $"L{length} d{d} h{heads} b{batch}", ms, 4.0 * batch * heads * length * (double)length * d, info);
            Console.Write(text.ToString().Split('\n')[^2] + "\n");
        }
        // "gemm" and "conv3x3 NHWC" rows: the block tile the device routes the shape to (the PyTorch peers' rows); the
        // "tile64" / "tile128" rows time both tiles.
        int sms = acc.NumMultiprocessors;
        foreach (int n in new[] { 4096, 1024 })
        {
            double flop = 2.0 * n * n * (double)n;
            var (s64, i64, cublas) = Gemm<GemmBlock64, F16Element>(acc, n);
            var (s128, i128, _) = Gemm<GemmBlock128, F16Element>(acc, n);
            bool large = TensorCoreGemmKernels.PrefersLargeBlock(n, n, 1, sms);
            Row("gemm", $"{n}", large ? s128 : s64, flop, large ? i128 : i64);
            Row("gemm tile64", $"{n}", s64, flop, i64);
            Row("gemm tile128", $"{n}", s128, flop, i128);
            var (two, twoInfo, _) = Gemm<GemmBlock128TwoStages, F16Element>(acc, n);
            Row("gemm tile128 2 stages", $"{n}", two, flop, twoInfo);
            Row("gemm cuBLAS Hgemm (in-process)", $"{n}", cublas, flop, null);
            var (bms, binfo, _) = large ? Gemm<GemmBlock128, BF16Element>(acc, n) : Gemm<GemmBlock64, BF16Element>(acc, n);
            Row("gemm bf16", $"{n}", bms, flop, binfo);
        }
        foreach (int stride in new[] { 1, 2 })
        {
            int o = (64 + 2 - 3) / stride + 1;
            double flop = 2.0 * 2 * 320 * 320 * 9 * (double)o * o;
            var (s64, i64) = Conv<GemmBlock64>(acc, 2, 320, 320, 64, stride);
            var (s128, i128) = Conv<GemmBlock128>(acc, 2, 320, 320, 64, stride);
            bool large = TensorCoreGemmKernels.PrefersLargeBlock(o * o, 320, 2, sms);
            Row("conv3x3 NHWC", $"320ch@64 b2 s{stride}", large ? s128 : s64, flop, large ? i128 : i64);
            Row("conv3x3 NHWC tile64", $"320ch@64 b2 s{stride}", s64, flop, i64);
            Row("conv3x3 NHWC tile128", $"320ch@64 b2 s{stride}", s128, flop, i128);
        }
        // The engine's route: NCHW in and out, as IlgpuDevice.Conv2d launches it for F16 and BF16 activations.
        // Rows without a tile name: the tile the device routes the shape to; f16 also times both tiles.
        foreach (var bf16 in new[] { false, true })
            foreach (var (kernel, stride) in new[] { (3, 1), (3, 2), (1, 1) })
            {
                int o = (64 + 2 * (kernel / 2) - kernel) / stride + 1;
                double flop = 2.0 * 2 * 320 * 320 * kernel * kernel * (double)o * o;
                bool large = TensorCoreConvKernels.PrefersLargeBlock(o * o, 320, 2, sms);
                string name = $"conv{kernel}x{kernel} NCHW{(bf16 ? " bf16" : "")}", shape = $"320ch@64 b2 s{stride}";
                if (bf16)
                {
                    var (ms, info) = large ? ConvNchw<GemmBlock128, BF16Element>(acc, 2, 320, 320, 64, kernel, stride) : ConvNchw<GemmBlock64, BF16Element>(acc, 2, 320, 320, 64, kernel, stride);
                    Row(name, shape, ms, flop, info);
                    continue;
                }
                var (s64, i64) = ConvNchw<GemmBlock64, F16Element>(acc, 2, 320, 320, 64, kernel, stride);
                var (s128, i128) = ConvNchw<GemmBlock128, F16Element>(acc, 2, 320, 320, 64, kernel, stride);
                Row(name, shape, large ? s128 : s64, flop, large ? i128 : i64);
                Row(name + " tile64", shape, s64, flop, i64);
                Row(name + " tile128", shape, s128, flop, i128);
                if (kernel == 3)
                {
                    // The gather that Cin not a multiple of 32 keeps (K ordered (ci, ky, kx)), on the routed tile, for the difference.
                    var (walk, walkInfo) = large ? ConvNchw<GemmBlock128, F16Element>(acc, 2, 320, 320, 64, kernel, stride, tapMajor: false)
                        : ConvNchw<GemmBlock64, F16Element>(acc, 2, 320, 320, 64, kernel, stride, tapMajor: false);
                    Row(name + " (ci, ky, kx) walk", shape, walk, flop, walkInfo);
                }
            }
        Console.WriteLine(text);
        if (outFile is not null) File.WriteAllText(outFile, text.ToString());
        return 0;
    }

    private static double Median(Accelerator acc, Launch launch)
    {
        for (int i = 0; i < 3; i++) launch();
        acc.Synchronize();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 5 || (times.Count < 50 && total.Elapsed.TotalSeconds < 1.5))
        {
            var sw = Stopwatch.StartNew();
            launch();
            acc.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }

    // Random 16-bit values of the element type (bf16 bits carried in Half slots, as the device passes them).
    private static MemoryBuffer1D<Half, Stride1D.Dense> RandomHalves<TElem>(Accelerator acc, long count, int seed, float scale) where TElem : struct, IMmaElement
    {
        var rng = new Random(seed);
        var data = new Half[count];
        for (long i = 0; i < count; i++) data[i] = Interop.IntAsFloat(default(TElem).Round(scale * (rng.NextSingle() * 2 - 1)));
        return acc.Allocate1D(data);
    }

    private static MemoryBuffer1D<Half, Stride1D.Dense> RandomHalves(Accelerator acc, long count, int seed, float scale) => RandomHalves<F16Element>(acc, count, seed, scale);

    /// <summary>Times the flash attention of one element type for a head-width type.</summary>
    private readonly struct AttentionTiming(Accelerator acc, int batch, int heads, int length, int d, bool bf16, bool bounded) : IHeadDimVisitor<(double, (int, int))>
    {
        public (double, (int, int)) Visit<TDim>() where TDim : struct, IHeadDim =>
            bf16 ? Attention<BF16Element, TDim>(acc, batch, heads, length, d, bounded) : Attention<F16Element, TDim>(acc, batch, heads, length, d, bounded);
    }

    private static (double, (int, int)) Attention<TElem, TDim>(Accelerator acc, int batch, int heads, int length, int d, bool bounded)
        where TElem : struct, IMmaElement where TDim : struct, IHeadDim
    {
        long count = (long)batch * length * heads * d;
        using var q = RandomHalves<TElem>(acc, count, 1, 1f);
        using var k = RandomHalves<TElem>(acc, count, 2, 1f);
        using var v = RandomHalves<TElem>(acc, count, 3, 1f);
        using var o = acc.Allocate1D<Half>(count);
        var kernel = PromotedKernels.LoadStreamKernel<GlobalHalf, GlobalHalf, GlobalHalf, ArrayView<Half>, TcAttentionParams>(acc, TensorCoreAttentionKernels.FlashAttention<PtxTensorCore, TElem, TDim>,
            bounded ? LaunchBounds.ForAttention(default(TDim)) : null);
        int bytes = TensorCoreAttentionKernels.SharedHalves(d) * 2;
        CudaLaunchLimits.AllowSharedBytes(kernel, bytes);
        var p = new TcAttentionParams { Lq = length, Lk = length, Heads = heads, HeadDim = d, Width = heads * d, ScaleLog2 = 1.4426950408889634f / MathF.Sqrt(d) };
        var config = new KernelConfig(new Index3D((length + TensorCoreAttentionKernels.Rows - 1) / TensorCoreAttentionKernels.Rows, batch * heads, 1),
            new Index3D(TensorCoreAttentionKernels.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(TensorCoreAttentionKernels.SharedHalves(d)));
        var (gq, gk, gv) = (GlobalHalf.Of(q.View), GlobalHalf.Of(k.View), GlobalHalf.Of(v.View));
        double ms = Median(acc, () => kernel(config, gq, gk, gv, o.View, p));
        return (ms, CudaLaunchLimits.Describe(kernel));
    }

    // The cuBLAS Hgemm peer runs for the f16 element only (its third result is NaN for bf16).
    private static (double, (int, int), double) Gemm<TTile, TElem>(Accelerator acc, int n) where TTile : struct, IGemmBlock where TElem : struct, IMmaElement
    {
        long count = (long)n * n;
        using var a = RandomHalves<TElem>(acc, count, 4, 1f);
        using var w = RandomHalves<TElem>(acc, count, 5, 0.05f);
        using var c = acc.Allocate1D<Half>(count);
        using var none = acc.Allocate1D<Half>(1);
        using var noBias = acc.Allocate1D<float>(1);
        var kernel = PromotedKernels.LoadStreamKernel<DenseA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(acc, TensorCoreGemmKernels.Gemm<PtxTensorCore, TTile, DenseA, TElem>);
        var p = new TcGemmParams { M = n, N = n, K = n, StrideA = count, StrideC = count, Alpha = 1f };
        var shape = TensorCoreGemmKernels.Shape<TTile>();
        CudaLaunchLimits.AllowSharedBytes(kernel, shape.SharedHalves * 2);
        var config = new KernelConfig(new Index3D((n + shape.BN - 1) / shape.BN, (n + shape.BM - 1) / shape.BM, 1), new Index3D(shape.Threads, 1, 1),
            SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves));
        var (ga, gw) = (GlobalHalf.Of(a.View), GlobalHalf.Of(w.View));
        var dense = new DenseA { M = n, K = n, Stride = count };
        double ms = Median(acc, () => kernel(config, dense, ga, gw, noBias.View, none.View, c.View, p));
        // cuBLAS, column-major: C^T [n, n] = W (op T) x A^T, the same product.
        double cublas = double.NaN;
        if (typeof(TElem) != typeof(F16Element) || typeof(TTile) != typeof(GemmBlock64)) return (ms, CudaLaunchLimits.Describe(kernel), cublas);
        try
        {
            using var blas = new CuBlas((CudaAccelerator)acc);
            Half one = Interop.IntAsFloat(BitConverter.HalfToUInt16Bits((System.Half)1f)), zero = default;
            cublas = Median(acc, () => blas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, n, n, n, one, w.View, n, a.View, n, zero, c.View, n));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or TypeInitializationException or InvalidOperationException)
        {
            // libcublas is not on the loader path of every GPU machine; the PyTorch peer still gives the ratio.
            Console.WriteLine($"cuBLAS unavailable: {e.Message}");
        }
        return (ms, CudaLaunchLimits.Describe(kernel), cublas);
    }

    private static (double, (int, int)) Conv<TTile>(Accelerator acc, int batch, int cin, int cout, int size, int stride) where TTile : struct, IGemmBlock
    {
        int o = (size + 2 - 3) / stride + 1;
        using var x = RandomHalves(acc, (long)batch * size * size * cin, 6, 1f);
        using var w = RandomHalves(acc, (long)cout * 9 * cin, 7, 0.05f);
        using var bias = acc.Allocate1D(Enumerable.Range(0, cout).Select(i => 0.1f * MathF.Sin(i)).ToArray());
        using var y = acc.Allocate1D<Half>((long)batch * o * o * cout);
        var kernel = PromotedKernels.LoadStreamKernel<ConvA, GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<Half>, ArrayView<Half>, TcGemmParams>(acc, TensorCoreGemmKernels.Gemm<PtxTensorCore, TTile, ConvA, F16Element>);
        var p = new TcGemmParams { M = o * o, N = cout, K = 9 * cin, StrideC = (long)o * o * cout, HasBias = 1, Alpha = 1f };
        var source = new ConvA { Cin = cin, H = size, W = size, Kw = 3, Wo = o, Stride = stride, Padding = 1, Pixels = o * o, K = 9 * cin };
        var shape = TensorCoreGemmKernels.Shape<TTile>();
        CudaLaunchLimits.AllowSharedBytes(kernel, shape.SharedHalves * 2);
        var config = new KernelConfig(new Index3D((cout + shape.BN - 1) / shape.BN, (o * o + shape.BM - 1) / shape.BM, batch),
            new Index3D(shape.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves));
        var (gx, gw) = (GlobalHalf.Of(x.View), GlobalHalf.Of(w.View));
        double ms = Median(acc, () => kernel(config, source, gx, gw, bias.View, y.View, y.View, p));
        return (ms, CudaLaunchLimits.Describe(kernel));
    }

    // K tap-major as the device routes Cin multiples of 32 (random weights: their layout does not change the time).
    private static (double, (int, int)) ConvNchw<TTile, TElem>(Accelerator acc, int batch, int cin, int cout, int size, int kernel, int stride, bool tapMajor = true)
        where TTile : struct, IGemmBlock where TElem : struct, IMmaElement
    {
        int pad = kernel / 2, o = (size + 2 * pad - kernel) / stride + 1;
        using var x = RandomHalves<TElem>(acc, (long)batch * cin * size * size, 9, 1f);
        using var w = RandomHalves<TElem>(acc, (long)cout * cin * kernel * kernel, 10, 0.05f);
        using var bias = acc.Allocate1D(Enumerable.Range(0, cout).Select(i => 0.01f * (i % 7)).ToArray());
        using var y = acc.Allocate1D<Half>((long)batch * cout * o * o);
        var launch = PromotedKernels.LoadStreamKernel<GlobalHalf, GlobalHalf, ArrayView<float>, ArrayView<float>, ArrayView<Half>, TcConvParams>(acc, TensorCoreConvKernels.Conv2d<PtxTensorCore, TTile, TElem>);
        var p = new TcConvParams { Cin = cin, H = size, W = size, Cout = cout, Ho = o, Wo = o, Kh = kernel, Kw = kernel, Stride = stride, Padding = pad, HasBias = 1 };
        p.Dense = kernel == 1 && p.Pixels % 8 == 0 ? 1 : 0;
        p.TapMajor = tapMajor && cin % TensorCoreConvKernels.BK == 0 ? 1 : 0;
        var shape = TensorCoreConvKernels.Shape<TTile>();
        var config = new KernelConfig(new Index3D((p.Pixels + shape.BN - 1) / shape.BN, (cout + shape.BM - 1) / shape.BM, batch),
            new Index3D(shape.Threads, 1, 1), SharedMemoryConfig.RequestDynamic<ushort>(shape.SharedHalves));
        var (gx, gw) = (GlobalHalf.Of(x.View), GlobalHalf.Of(w.View));
        double ms = Median(acc, () => launch(config, gx, gw, bias.View, bias.View, y.View, p)); // one tile row per image fills the H200 here: no K split
        return (ms, CudaLaunchLimits.Describe(launch));
    }
}

/// <summary>
/// <see cref="GemmBlock128"/> with the double buffering it had before the third stage (40 KB of shared memory), timed beside
/// it by the "gemm tile128 2 stages" rows.
/// </summary>
internal struct GemmBlock128TwoStages : IGemmBlock
{
    public readonly int WarpsM => 2;
    public readonly int WarpsN => 4;
    public readonly int WarpRows => 64;
    public readonly int Stages => 2;
}
