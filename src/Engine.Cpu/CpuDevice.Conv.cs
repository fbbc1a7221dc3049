using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    // Columns of the implicit column matrix packed at once (all of its depth): bounds the packed
    // block to about 16 MB however large the image, like the GEMM's own B blocks.
    private const long ConvPackedBudget = 4L << 20;

    // Column panels per parallel product job.
    private const int PanelsPerJob = 8;

    // The packed weights and packed columns are rented from KernelScratch for the op.

    /// <summary>
    /// The convolution algorithm (default <see cref="Cpu.ConvAlgorithm.Auto"/>); tests force the GEMM path or
    /// a direct kernel to check each against the reference on any CPU that can run it.
    /// </summary>
    internal ConvAlgorithm ConvAlgorithm { get; set; }

    /// <summary>
    /// The algorithm that runs a convolution of this shape with <see cref="ConvAlgorithm"/> on this CPU
    /// (<paramref name="spatial"/> input positions of one image; <paramref name="cin"/> input channels, when not given
    /// taken as <paramref name="cout"/>). A forced <see cref="ConvAlgorithm.Winograd"/> applies to 3x3 stride-1 pad-1
    /// shapes; others get the automatic choice. The batch size takes no part: the algorithms round differently, and an
    /// image must come out the same bits alone as in a batch (docs/ARCHITECTURE.md, "Determinism").
    /// </summary>
    internal ConvAlgorithm ChooseConv(int spatial, int cout, int kh, int kw, int stride, int padding, int cin = -1)
    {
        var forced = ConvAlgorithm;
        if (forced == ConvAlgorithm.Direct512 && !DirectConv.Supports512) throw new PlatformNotSupportedException("The AVX-512 convolution kernel needs AVX-512F.");
        if (forced == ConvAlgorithm.Direct256 && !DirectConv.Supports256) throw new PlatformNotSupportedException("The AVX2 convolution kernel needs AVX2 and FMA.");
        bool winogradShape = kh == 3 && kw == 3 && stride == 1 && padding == 1;
        if (winogradShape && (forced == ConvAlgorithm.Winograd ||
            (forced == ConvAlgorithm.Auto && WinogradWins(spatial, cin < 0 ? cout : cin, cout))))
            return ConvAlgorithm.Winograd;
        if (forced == ConvAlgorithm.Winograd) forced = ConvAlgorithm.Auto;
        bool direct = forced is ConvAlgorithm.Direct256 or ConvAlgorithm.Direct512 ||
            (forced == ConvAlgorithm.Auto && DirectWins(spatial, cout, kh, kw, stride, padding));
        if (!direct) return ConvAlgorithm.Gemm;
        if (forced != ConvAlgorithm.Auto) return forced;
        return DirectConv.Supports512 ? ConvAlgorithm.Direct512 : DirectConv.Supports256 ? ConvAlgorithm.Direct256 : ConvAlgorithm.Gemm;
    }

    /// <summary>
    /// 3x3 stride-1 pad-1 shapes where Winograd F(2x2, 3x3) beats the direct kernel, on AVX-512 CPUs (its transforms
    /// are written for 16-lane vectors). Measured on 2 cores (docs/PERFORMANCE.md, "Winograd 3x3 convolution on the
    /// CPU"): 1.4-2.4x the direct kernel's speed at every SD 1.5 VAE and UNet shape from 16x16 at batch 2 up, 1.03x at
    /// 8x8 (too few tiles to amortise the filter transform). Its transformed filters take 64 Cin Cout bytes of
    /// scratch per call, so products above 2^20 channel pairs (64 MB: 1280 -> 1280 and wider) run in passes over
    /// slices of the output channels (<see cref="WinogradConv.MaxPassPairs"/>), each transforming the input again:
    /// worth it from 2048 positions (1920 -> 640 at 32x32, batch 2: 1.7x the direct kernel's speed, 2026-12-04), not at
    /// 16x16 (1280 -> 1280 at batch 2: 0.86x, the filter transform costs as much as a fifth of the products there).
    /// The thresholds count one image's positions (half the measured batch-2 ones, so SD's CFG batch of 2 keeps the
    /// measured choices): a batch must not switch an image to another algorithm.
    /// </summary>
    private static bool WinogradWins(int spatial, int cin, int cout) =>
        DirectConv.Supports512 && Math.Min(cin, cout) >= 128 && spatial >= 256 &&
        ((long)cin * cout <= WinogradConv.MaxPassPairs || spatial >= 1024);

    /// <summary>
    /// Stride-1 shapes where the direct kernel beats packed GEMM. Measured (2 cores, AVX-512): 3x3 from
    /// 32 to 320 channels at 7x7 to 64x64, 1.3-2.5x faster; 1x1 with few output channels about 2x at
    /// batch 16 (the GEMM packs the whole image for a short product) but slower for a single 7x7 image;
    /// 1x1 with 320 channels at 64x64 1.5x slower (there the GEMM's packed panels are reused enough).
    /// The 1x1 threshold counts one image's positions (half the batch-2 one), so that a batch never changes the choice.
    /// </summary>
    private static bool DirectWins(int spatial, int cout, int kh, int kw, int stride, int padding)
    {
        if (stride > 2) return false;
        bool pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;
        return !pointwise || (cout <= 64 && spatial >= 128);
    }

    /// <summary>
    /// Convolution by the direct kernel (<see cref="DirectConv"/>) where <see cref="ChooseConv"/> picks it, else
    /// as GEMM per image: output [Cout, Ho*Wo] = weight [Cout, Cin*kh*kw] x columns
    /// [Cin*kh*kw, Ho*Wo], bias fused per output channel (a row of the product). A 1x1 stride-1
    /// unpadded convolution uses the image itself as the column matrix (plain GEMM).
    /// <para>
    /// Other kernels pack the column matrix straight from the image into the micro-kernel's B panels
    /// (<see cref="PackColumns"/>) instead of writing an im2col matrix that the GEMM would then copy
    /// into panels again: with few output channels (64 at 64x64) each B panel feeds only a few
    /// micro-kernel calls, so the copies cost more than the arithmetic. The weights are packed once
    /// per call; the columns of as many whole images as fit ~16 MB (or, for large images, blocks of one
    /// image's columns) are packed in parallel, then multiplied in parallel chunks of 8 panels.
    /// </para>
    /// </summary>
    protected override unsafe void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        if (TryConv2dBf16(x, weight, bias, output, stride, padding)) return;
        int batch = x.Dim(0), cin = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        int cout = weight.Dim(0), kh = weight.Dim(2), kw = weight.Dim(3);
        var algorithm = ChooseConv(h * w, cout, kh, kw, stride, padding, cin);
        if (algorithm == ConvAlgorithm.Winograd)
        {
            // F32 and F16 weights are transformed as stored; BF16 ones are widened first.
            using var wideBf16 = weight.DType == DType.BF16 ? Convert(weight, DType.F32) : null;
            RunWinograd(x, wideBf16 ?? weight, bias, output);
            return;
        }
        int ho = output.Dim(2), wo = output.Dim(3), spatial = ho * wo, depth = cin * kh * kw;
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        bool pointwise = kh == 1 && kw == 1 && stride == 1 && padding == 0;
        // The GEMM paths pack half-precision weights directly (widening each panel), the direct kernels widen F16 weights
        // as they pack them; only BF16 weights on the direct route get a widened copy first.
        using var wide = algorithm == ConvAlgorithm.Gemm || weight.DType != DType.BF16 ? null : Convert(weight, DType.F32);
        nint weights0 = ElementAddress(wide ?? weight);
        var weightType = (wide ?? weight).DType;
        fixed (float* px = xArr, po = oArr, pbias = biasArr)
        {
            float* biasPtr = pbias == null ? null : pbias + biasOff;
            if (algorithm != ConvAlgorithm.Gemm)
            {
                bool half = weightType == DType.F16;
                DirectConv.Run(px + xOff, half ? null : (float*)weights0, half ? (Half*)weights0 : null, biasPtr, po + oOff,
                    new DirectConv.Shape(batch, cin, h, w, cout, kh, kw, stride, padding), wide: algorithm == ConvAlgorithm.Direct512, Parallelism);
                return;
            }
            if (pointwise)
            {
                for (int n = 0; n < batch; n++)
                    Gemm.Run(new GemmProblem
                    {
                        M = cout, N = spatial, K = depth,
                        A = weights0, TypeA = weightType, RsA = depth, CsA = 1,
                        B = (nint)(px + xOff + (long)n * cin * h * w), RsB = spatial, CsB = 1,
                        C = (nint)(po + oOff + (long)n * cout * spatial), Ldc = spatial,
                        Alpha = 1f, Bias = (nint)biasPtr, BiasPerRow = true,
                    }, Parallelism);
                return;
            }
            int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
            var weights = new GemmProblem { M = cout, K = depth, A = weights0, TypeA = weightType, RsA = depth, CsA = 1, Alpha = 1f };
            using var weightsLease = KernelScratch.Rent(Gemm.PackedASize(weights));
            float* packedA = weightsLease.Pointer;
            Gemm.PackAllA(weights, packedA);
            nint pa = (nint)packedA, pbi = (nint)biasPtr, xBase = (nint)(px + xOff), oBase = (nint)(po + oOff);
            var geometry = new ConvGeometry(cin, h, w, kh, kw, stride, padding, wo, spatial);
            long imageStride = (long)cin * h * w, outStride = (long)cout * spatial;
            int panelsPerImage = (spatial + nr - 1) / nr;
            long imageFloats = (long)panelsPerImage * nr * depth;
            if (imageFloats <= ConvPackedBudget)
            {
                // Whole images at a time, as many as the budget holds: one parallel packing pass and
                // one parallel product pass per block of images (small images give small products,
                // and a batch then still makes enough parallel work).
                int imagesPerBlock = (int)Math.Clamp(ConvPackedBudget / imageFloats, 1, batch);
                using var columns = KernelScratch.Rent(imagesPerBlock * imageFloats);
                nint pb = (nint)columns.Pointer;
                int chunksPerImage = (panelsPerImage + PanelsPerJob - 1) / PanelsPerJob;
                for (int n0 = 0; n0 < batch; n0 += imagesPerBlock)
                {
                    int images = Math.Min(imagesPerBlock, batch - n0), first = n0;
                    Parallel.For(0, images * panelsPerImage, Parallelism, job =>
                    {
                        int img = job / panelsPerImage, jp = job - img * panelsPerImage;
                        PackColumns((float*)xBase + (first + img) * imageStride, geometry, jp * nr, Math.Min(nr, spatial - jp * nr), nr,
                            (float*)pb + (long)job * nr * depth);
                    });
                    Parallel.For(0, images * chunksPerImage, Parallelism, job =>
                    {
                        int img = job / chunksPerImage, chunk = job - img * chunksPerImage;
                        int c0 = chunk * PanelsPerJob * nr, width = Math.Min(PanelsPerJob * nr, spatial - c0);
                        float* panels = (float*)pb + ((long)img * panelsPerImage + chunk * PanelsPerJob) * nr * depth;
                        Gemm.RunPacked(cout, width, depth, (float*)pa, (long)mr * depth, panels, (long)nr * depth,
                            (float*)oBase + (first + img) * outStride + c0, spatial, accumulate: false, rowBias: (float*)pbi);
                    });
                }
                return;
            }
            // Large images: one image at a time, in blocks of columns.
            int blockCols = (int)Math.Max(nr * PanelsPerJob, ConvPackedBudget / depth / (nr * PanelsPerJob) * (nr * PanelsPerJob));
            int blockPanels = (Math.Min(blockCols, spatial) + nr - 1) / nr;
            using var columnsLarge = KernelScratch.Rent((long)blockPanels * nr * depth);
            nint pbLarge = (nint)columnsLarge.Pointer;
            for (int n = 0; n < batch; n++)
            {
                nint image = xBase + (nint)(n * imageStride * sizeof(float)), outImage = oBase + (nint)(n * outStride * sizeof(float));
                for (int j0 = 0; j0 < spatial; j0 += blockCols)
                {
                    int cols = Math.Min(blockCols, spatial - j0), panels = (cols + nr - 1) / nr, first = j0;
                    Parallel.For(0, panels, Parallelism, jp =>
                        PackColumns((float*)image, geometry, first + jp * nr, Math.Min(nr, spatial - first - jp * nr), nr, (float*)pbLarge + (long)jp * nr * depth));
                    int jobs = (panels + PanelsPerJob - 1) / PanelsPerJob;
                    Parallel.For(0, jobs, Parallelism, job =>
                    {
                        int c0 = job * PanelsPerJob * nr, width = Math.Min(PanelsPerJob * nr, cols - c0);
                        Gemm.RunPacked(cout, width, depth, (float*)pa, (long)mr * depth, (float*)pbLarge + (long)job * PanelsPerJob * nr * depth,
                            (long)nr * depth, (float*)outImage + first + c0, spatial, accumulate: false, rowBias: (float*)pbi);
                    });
                }
            }
        }
    }

    /// <summary>Winograd F(2x2, 3x3) (<see cref="WinogradConv"/>), reading F32 or F16 weights as they are stored.</summary>
    private unsafe void RunWinograd(Tensor x, Tensor weight, Tensor? bias, Tensor output)
    {
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        var (biasArr, biasOff) = bias is null ? (null, 0) : Raw(bias);
        var shape = new WinogradConv.Shape(x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), weight.Dim(0));
        var buffer = (CpuBuffer)weight.Buffer;
        int wOff = (int)weight.Offset;
        fixed (float* px = xArr, po = oArr, pbias = biasArr)
        {
            float* biasPtr = pbias == null ? null : pbias + biasOff;
            if (weight.DType == DType.F16)
                fixed (Half* pw = buffer.F16!) WinogradConv.Run(px + xOff, null, pw + wOff, biasPtr, po + oOff, shape, Parallelism);
            else
                fixed (float* pw = buffer.F32!) WinogradConv.Run(px + xOff, pw + wOff, null, biasPtr, po + oOff, shape, Parallelism);
        }
    }

    /// <summary>Shape of one convolution, for <see cref="PackColumns"/>.</summary>
    private readonly record struct ConvGeometry(int Cin, int H, int W, int Kh, int Kw, int Stride, int Padding, int Wo, int Spatial);

    /// <summary>
    /// Packs output positions [j0, j0 + count) of the implicit column matrix as one B panel of width
    /// <paramref name="nr"/>: dst[p * nr + c] = x[ci, oy*s - pad + ky, ox*s - pad + kx] for depth
    /// p = (ci, ky, kx) and position j0 + c = (oy, ox); zero outside the image and past count. Stride-1
    /// runs within an output row are contiguous in the image and copied as spans.
    /// </summary>
    private static unsafe void PackColumns(float* x, in ConvGeometry g, int j0, int count, int nr, float* dst)
    {
        int p = 0;
        for (int ci = 0; ci < g.Cin; ci++)
        {
            float* plane = x + (long)ci * g.H * g.W;
            for (int ky = 0; ky < g.Kh; ky++)
                for (int kx = 0; kx < g.Kw; kx++, p++)
                {
                    float* d = dst + (long)p * nr;
                    int c = 0;
                    while (c < count)
                    {
                        int j = j0 + c, oy = j / g.Wo, ox = j - oy * g.Wo;
                        int run = Math.Min(g.Wo - ox, count - c);
                        int iy = oy * g.Stride - g.Padding + ky;
                        if (iy < 0 || iy >= g.H) { new Span<float>(d + c, run).Clear(); c += run; continue; }
                        float* row = plane + (long)iy * g.W;
                        int ix0 = ox * g.Stride - g.Padding + kx;
                        if (g.Stride == 1)
                        {
                            // Inside the image for ix in [0, W): positions [lo, hi) of the run.
                            int lo = Math.Clamp(-ix0, 0, run), hi = Math.Clamp(g.W - ix0, lo, run);
                            if (lo > 0) new Span<float>(d + c, lo).Clear();
                            if (hi > lo) new ReadOnlySpan<float>(row + ix0 + lo, hi - lo).CopyTo(new Span<float>(d + c + lo, hi - lo));
                            if (run > hi) new Span<float>(d + c + hi, run - hi).Clear();
                        }
                        else
                            for (int t = 0; t < run; t++)
                            {
                                int ix = ix0 + t * g.Stride;
                                d[c + t] = ix >= 0 && ix < g.W ? row[ix] : 0f;
                            }
                        c += run;
                    }
                    if (count < nr) new Span<float>(d + count, nr - count).Clear();
                }
        }
    }
}
