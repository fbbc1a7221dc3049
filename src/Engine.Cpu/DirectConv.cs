using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>Which convolution algorithm <see cref="CpuDevice"/> runs (Auto picks by shape and CPU; tests force the others).</summary>
internal enum ConvAlgorithm
{
    /// <summary>Direct kernel where it wins and the CPU has AVX2/FMA or AVX-512, else GEMM.</summary>
    Auto,
    /// <summary>Columns packed into GEMM panels (any shape, any CPU).</summary>
    Gemm,
    /// <summary>Direct kernel with 256-bit vectors (needs AVX2 and FMA).</summary>
    Direct256,
    /// <summary>Direct kernel with 512-bit vectors (needs AVX-512F).</summary>
    Direct512,
    /// <summary>Winograd F(2x2, 3x3) on the packed GEMM (<see cref="WinogradConv"/>; 3x3 stride 1 pad 1 only, any CPU).</summary>
    Winograd,
}

/// <summary>
/// Direct convolution for NCHW tensors, without an im2col matrix or packed columns.
/// <para>
/// Each parallel job owns a band of output rows of one image (and, when there are too few images
/// and rows to keep the cores busy, a group of output channels). It first copies the input rows the
/// band needs into thread-local scratch with the zero padding written in, rows Wp = W + 2 pad apart
/// (W + pad for "same" kernels, which share one pad between neighbouring rows). In that layout output position (oy, ox), flattened as j = oy Wp + ox, reads input j + ky Wp + kx
/// for tap (ky, kx): the whole convolution becomes a 1-D correlation over j with kh kw fixed offsets,
/// so contiguous vectors of output positions (crossing row ends; the pad columns give Wo / Wp of the
/// lanes useful work) load contiguous input with no gathers and no edge cases. The micro-kernel keeps
/// 4 output channels x up to 6 (AVX-512) or 3 (AVX2) vectors of positions in registers and, per input
/// channel and tap, broadcasts 4 weights and issues one FMA per accumulator; results go through a
/// small tile to the output rows, bias added on the way.
/// </para>
/// <para>
/// Cache blocking: the weights are repacked once per call into the order
/// the kernel reads them, and the input channels are taken in blocks whose slice of the band for one
/// tile of positions fits in L1, so every output-channel tile of a block reads its input from L1 and
/// its weights as one sequential stream; partial sums of all output channels of the tile of positions
/// wait in a small scratch between blocks. Without the blocks a tile's input (all channels) and the
/// weights of all output channels fell out of L1 and L2 alike with 256-512 channels, and the kernel
/// ran at half its in-cache speed.
/// </para>
/// <para>
/// Why: with the 32-64 output channels of small UNets the GEMM path packs as many column floats as it
/// multiplies, so packing costs as much as the arithmetic; here the only copy is the padded input, once
/// per band, shared by every output channel.
/// </para>
/// </summary>
internal static unsafe partial class DirectConv
{
    /// <summary>Output channels per micro-kernel tile.</summary>
    private const int CoTile = 4;

    /// <summary>
    /// Floats of padded input one job may hold (1 MB): bounds the band height for large images. The band should
    /// stay in L2: 4 MB bands (full tiles for 512 channels at 128x128 instead of one-row bands of 8 vectors)
    /// measured slower, 0.67x ONNX Runtime against 0.92x.
    /// </summary>
    private const long BandBudget = 256 * 1024;

    /// <summary>Bytes of L1 (of 48 KB) one tile's slice of the band may take: sets the input-channel block.</summary>
    private const int L1Budget = 24 * 1024;

    /// <summary>Output positions (all images) from which float32 weights are packed rather than read in place.</summary>
    private const long PackMinPositions = 1024;

    /// <summary>Weights (floats; 4 MB, twice L2) from which a convolution with few positions counts as bound by reading them.</summary>
    private const long WeightBoundFloats = 1L << 20;

    /// <summary>Few positions take <see cref="RunStacked"/> (default); false restores the per-image route, for benchmarks comparing the two.</summary>
    internal static bool StackFewPositions { get; set; } = true;

    [ThreadStatic] private static AlignedBuffer? _band;
    [ThreadStatic] private static AlignedBuffer? _sums;
    [ThreadStatic] private static AlignedBuffer? _rows;

    /// <summary>The AVX-512 kernel can run on this CPU.</summary>
    public static bool Supports512 => Avx512F.IsSupported;

    /// <summary>The AVX2 kernel can run on this CPU.</summary>
    public static bool Supports256 => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>Shape of one convolution.</summary>
    public readonly record struct Shape(int Batch, int Cin, int H, int W, int Cout, int Kh, int Kw, int Stride, int Padding)
    {
        /// <summary>
        /// Row pitch in the band, a multiple of the stride. At stride 1 with a kernel no wider than
        /// 2 pad + 1 and at least pad + 1 wide (3x3 pad 1, 5x5 pad 2) a row's right padding is the next
        /// row's left padding, so rows are W + pad apart and fewer lanes fall on pad columns.
        /// </summary>
        public int Wp => Stride == 1 && Kw - 1 - Padding <= Padding && Kw >= Padding + 1
            ? W + Padding
            : (W + 2 * Padding + Stride - 1) / Stride * Stride;
        /// <summary>Row width of one phase plane: the pitch of flattened output positions.</summary>
        public int Wq => Wp / Stride;
        public int Ho => (H + 2 * Padding - Kh) / Stride + 1;
        public int Wo => (W + 2 * Padding - Kw) / Stride + 1;
    }

    /// <summary>
    /// y [batch, cout, ho, wo] = conv(x [batch, cin, h, w], w [cout, cin, kh, kw]) + bias;
    /// <paramref name="bias"/> may be null. <paramref name="wide"/> selects the AVX-512 kernel.
    /// </summary>
    public static void Run(float* x, float* w, float* bias, float* y, Shape s, bool wide, ParallelOptions? options) =>
        Run(x, w, null, bias, y, s, wide, options);

    /// <summary>
    /// As <see cref="Run(float*, float*, float*, float*, Shape, bool, ParallelOptions?)"/> with float32 weights
    /// <paramref name="w"/> or half weights <paramref name="w16"/> (the other null). Fewer than 1024 output positions
    /// (all images) take <see cref="RunStacked"/>, which widens half weights block by block in L1; otherwise half weights
    /// are packed, widened on the way (no separate widened copy of the tensor).
    /// </summary>
    public static void Run(float* x, float* w, Half* w16, float* bias, float* y, Shape s, bool wide, ParallelOptions? options)
    {
        int threads = options is null ? 1 : Math.Max(1, options.MaxDegreeOfParallelism < 0 ? Environment.ProcessorCount : options.MaxDegreeOfParallelism);
        int ho = s.Ho, coBlocks = (s.Cout + CoTile - 1) / CoTile;
        int kc = ChannelBlock(s, wide);
        // Packing reads and writes the weights once per call: worth it unless each weight serves few positions, as at 8x8 with 1280 channels, where it would double the
        // memory traffic of a convolution bound by reading its 59 MB of weights. With few positions there is
        // one tile of positions or a few, the weights stream once per tile whatever the blocks, and their long
        // rows stream better unblocked (1280 channels at 16x16: 5% faster).
        bool few = (long)s.Batch * ho * s.Wo < PackMinPositions;
        if (few && StackFewPositions)
        {
            RunStacked(x, w, w16, bias, y, s, wide, threads, threads > 1 ? options : null);
            return;
        }
        if (few) kc = s.Cin;
        float* packed = null;
        // Half weights are packed whatever the positions: the packing pass is the widening pass they need anyway.
        using var packedLease = !few || w16 != null ? KernelScratch.Rent((long)coBlocks * CoTile * s.Cin * s.Kh * s.Kw) : default;
        if (!few || w16 != null)
        {
            packed = packedLease.Pointer;
            PackWeights(w, w16, packed, s, kc, threads > 1 ? options : null);
        }
        // Few positions and weights beyond L2 (1280 channels at 8x8 or 16x16): the weight stream bounds the
        // time, so jobs split the output channels first (each reads only its channels' weights, once per
        // tile of positions) and keep whole images as bands (more positions per weight read, fewer pad lanes).
        bool weightBound = few && (long)s.Cout * s.Cin * s.Kh * s.Kw >= WeightBoundFloats;
        // Band height: all rows unless the padded band would outgrow the budget.
        int maxRows = (int)Math.Clamp((BandBudget / ((long)s.Cin * s.Wp) - s.Kh) / s.Stride + 1, 1, ho);
        int bands = (ho + maxRows - 1) / maxRows, groups = 1;
        // Two jobs per thread: enough to balance the threads, few enough to keep the dispatch small.
        // Split bands while they keep >= 4 rows (each split copies kh - 1 halo rows again), then output
        // channels (each split copies the band again).
        int target = threads == 1 ? 1 : 2 * threads;
        while ((long)s.Batch * bands * groups < target)
        {
            if (weightBound && coBlocks / (groups * 2) >= 1) groups *= 2;
            else if (ho / (bands * 2) >= 4) bands *= 2;
            else if (coBlocks / (groups * 2) >= 1) groups *= 2;
            else break;
        }
        int bandRows = (ho + bands - 1) / bands;
        bands = (ho + bandRows - 1) / bandRows;
        // A band count that leaves a thread idle at the end (13 bands of 5 rows on 2 threads) is raised
        // to a multiple of the threads with shorter bands (16 of 4) when one is within twice as many bands.
        if (threads > 1 && s.Batch * groups == 1 && bands > threads && bands % threads != 0)
            for (int more = bands + 1; more <= 2 * bands; more++)
            {
                int r = (ho + more - 1) / more, count = (ho + r - 1) / r;
                if (count % threads == 0) { bandRows = r; bands = count; break; }
            }
        int blocksPerGroup = (coBlocks + groups - 1) / groups;
        groups = (coBlocks + blocksPerGroup - 1) / blocksPerGroup;
        int jobs = s.Batch * bands * groups;
        nint px = (nint)x, pw = (nint)w, pp = (nint)packed, pb = (nint)bias, py = (nint)y;
        void Job(int job)
        {
            int n = job / (bands * groups), rest = job - n * bands * groups, band = rest / groups, group = rest - band * groups;
            int oy0 = band * bandRows, rows = Math.Min(bandRows, ho - oy0);
            int b0 = group * blocksPerGroup, b1 = Math.Min(coBlocks, b0 + blocksPerGroup);
            RunBand((float*)px + (long)n * s.Cin * s.H * s.W, (float*)pw, (float*)pp, kc, (float*)pb,
                (float*)py + (long)n * s.Cout * ho * s.Wo, s, oy0, rows, b0, b1, wide);
        }
        if (jobs == 1 || threads == 1) for (int j = 0; j < jobs; j++) Job(j);
        else Parallel.For(0, jobs, options!, Job);
    }

    /// <summary>
    /// Input channels per cache block: as many as keep one tile's slice of the band (kh rows of about a tile
    /// of positions plus the kernel's width, per channel; the stride's phase planes hold the same floats) in
    /// about half of L1, leaving the rest to the weight stream and the partial sums.
    /// </summary>
    private static int ChannelBlock(in Shape s, bool wide)
    {
        int tileWidth = (wide ? 6 * 16 : 3 * 8) + s.Kw + 16, floats = s.Kh * tileWidth;
        // Narrow images at stride 1: the kh rows of a tile overlap into one run of the band.
        if (s.Stride == 1) floats = Math.Min(floats, (s.Kh - 1) * s.Wq + tileWidth);
        return Math.Min(s.Cin, Math.Max(4, L1Budget / (sizeof(float) * floats)));
    }

    /// <summary>
    /// Output rows [oy0, oy0 + rows) and output-channel tiles [cb0, cb1) of one image; weights from
    /// <paramref name="packed"/>, or from the tensor <paramref name="w"/> when that is null.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunBand(float* x, float* w, float* packed, int kc, float* bias, float* y, in Shape s, int oy0, int rows, int cb0, int cb1, bool wide)
    {
        int stride = s.Stride, wq = s.Wq, vl = wide ? 16 : 8, rowsIn = (rows - 1) * stride + s.Kh;
        // Each input channel is stored as stride x stride phase planes: phase (fy, fx) holds the padded
        // rows fy, fy + stride, ... and columns fx, fx + stride, ..., so output position j = r wq + ox
        // reads phase (ky % stride, kx % stride) at j + (ky / stride) wq + kx / stride: contiguous in j.
        // Slack of a row and a vector after each phase plane covers the reads of the last vector's dead lanes.
        int rowsQ = (rowsIn + stride - 1) / stride;
        long phaseStride = ((long)rowsQ * wq + wq + vl + 15) & ~15L, planeStride = phaseStride * stride * stride;
        float* band = (_band ??= new AlignedBuffer()).Ensure(planeStride * s.Cin);
        FillBand(x, band, phaseStride, s, oy0 * stride - s.Padding, rowsIn);
        int taps = s.Kh * s.Kw;
        int* offsets = stackalloc int[taps];
        for (int ky = 0; ky < s.Kh; ky++)
            for (int kx = 0; kx < s.Kw; kx++)
                offsets[ky * s.Kw + kx] = (int)((ky % stride * stride + kx % stride) * phaseStride) + ky / stride * wq + kx / stride;
        int positions = (rows - 1) * wq + s.Wo, vectors = (positions + vl - 1) / vl;
        int maxVectors = wide ? 6 : 3, tileStride = maxVectors * vl, coBlocks = (s.Cout + CoTile - 1) / CoTile;
        long wRow = (long)s.Cin * taps;
        // Partial sums of every output-channel tile of the job for one tile of positions.
        float* sums = (_sums ??= new AlignedBuffer()).Ensure((long)(cb1 - cb0) * CoTile * tileStride);
        // Tiles of positions as even as the vector count allows (21 vectors: 6 6 5 4 rather than 6 6 6 3).
        int posTiles = (vectors + maxVectors - 1) / maxVectors;
        // One block of all input channels and several tiles of positions, an output-channel tile's weights beyond half
        // of L1 (few positions, wide weights): output-channel tiles outermost, so a tile's weights come from memory
        // once and from L2 for the other tiles of positions, instead of from memory once per tile of positions.
        bool weightsOuter = kc >= s.Cin && posTiles > 1 && (long)s.Cin * taps * CoTile * sizeof(float) > L1Budget;
        for (int ca = cb0; ca < cb1;)
        {
            int cz = weightsOuter ? ca + 1 : cb1;
            for (int pt = 0, v0 = 0; pt < posTiles; pt++)
            {
                int nv = vectors / posTiles + (pt < vectors % posTiles ? 1 : 0), j0 = v0 * vl;
                v0 += nv;
                for (int ci0 = 0; ci0 < s.Cin; ci0 += kc)
                {
                    int kcb = Math.Min(kc, s.Cin - ci0);
                    float* xs = band + ci0 * planeStride + j0;
                    bool accumulate = ci0 > 0;
                    for (int cb = ca; cb < cz; cb++)
                    {
                        float* tile = sums + (long)(cb - ca) * CoTile * tileStride, w0, w1, w2, w3;
                        int step;
                        if (packed != null)
                        {
                            w0 = packed + (long)ci0 * taps * CoTile * coBlocks + (long)cb * kcb * taps * CoTile;
                            w1 = w0 + 1; w2 = w0 + 2; w3 = w0 + 3; step = CoTile;
                        }
                        else
                        {
                            // Missing channels of a partial tile reuse the first row of weights; their results are dropped.
                            int count = Math.Min(CoTile, s.Cout - cb * CoTile);
                            w0 = w + (long)cb * CoTile * wRow + (long)ci0 * taps;
                            w1 = count > 1 ? w0 + wRow : w0; w2 = count > 2 ? w0 + 2 * wRow : w0; w3 = count > 3 ? w0 + 3 * wRow : w0; step = 1;
                        }
                        if (wide)
                            switch (nv)
                            {
                                case 1: Tile512<N1>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                case 2: Tile512<N2>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                case 3: Tile512<N3>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                case 4: Tile512<N4>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                case 5: Tile512<N5>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                default: Tile512<N6>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                            }
                        else
                            switch (nv)
                            {
                                case 1: Tile256<N1>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                case 2: Tile256<N2>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                                default: Tile256<N3>(xs, planeStride, kcb, offsets, taps, w0, w1, w2, w3, step, tile, tileStride, accumulate); break;
                            }
                    }
                }
                for (int cb = ca; cb < cz; cb++)
                {
                    int co = cb * CoTile, count = Math.Min(CoTile, s.Cout - co);
                    StoreTile(sums + (long)(cb - ca) * CoTile * tileStride, tileStride, count, bias == null ? null : bias + co,
                        y + (long)co * s.Ho * s.Wo, s, oy0, j0, Math.Min(nv * vl, positions - j0));
                }
            }
            ca = cz;
        }
    }

    /// <summary>
    /// Copies input rows [iy0, iy0 + rowsIn) of every channel into the band, each row framed by the
    /// padding zeros (rows outside the image all zero) and split into the stride's phase planes, plus
    /// zeroed slack after each phase plane.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillBand(float* x, float* band, long phaseStride, in Shape s, int iy0, int rowsIn)
    {
        int wp = s.Wp, wq = s.Wq, pad = s.Padding, width = s.W, stride = s.Stride;
        for (int ci = 0; ci < s.Cin; ci++)
        {
            float* plane = x + (long)ci * s.H * width, dst = band + ci * phaseStride * stride * stride;
            if (stride == 1)
            {
                for (int r = 0; r < rowsIn; r++, dst += wp)
                {
                    int iy = iy0 + r;
                    if (iy < 0 || iy >= s.H) { Clear(dst, wp); continue; }
                    for (int i = 0; i < pad; i++) dst[i] = 0f;
                    for (int i = pad + width; i < wp; i++) dst[i] = 0f;
                    Copy(plane + (long)iy * width, dst + pad, width);
                }
                Clear(dst, (int)(phaseStride - (long)rowsIn * wp));
                continue;
            }
            for (int f = 0; f < stride * stride; f++) Clear(dst + f * phaseStride, (int)phaseStride);
            for (int r = 0; r < rowsIn; r++)
            {
                int iy = iy0 + r;
                if (iy < 0 || iy >= s.H) continue;
                float* src = plane + (long)iy * width, row = dst + r % stride * stride * phaseStride + (long)(r / stride) * wq;
                // Column c = pad + ix of the padded row goes to phase c % stride at c / stride.
                for (int fx = 0; fx < stride; fx++)
                {
                    int ix = ((fx - pad) % stride + stride) % stride;
                    float* d = row + fx * phaseStride + (pad + ix) / stride;
                    for (; ix < width; ix += stride) *d++ = src[ix];
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Copy(float* src, float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512.Store(Vector512.Load(src + i), dst + i);
        for (; i + 8 <= n; i += 8) Vector256.Store(Vector256.Load(src + i), dst + i);
        for (; i < n; i++) dst[i] = src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Clear(float* dst, int n)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i + 16 <= n; i += 16) Vector512<float>.Zero.Store(dst + i);
        for (; i + 8 <= n; i += 8) Vector256<float>.Zero.Store(dst + i);
        for (; i < n; i++) dst[i] = 0f;
    }

    /// <summary>
    /// Writes flattened band positions [j0, j0 + count) of <paramref name="channels"/> tile rows to the
    /// output, skipping the pad columns (ox >= Wo) and adding the bias.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreTile(float* tile, int tileStride, int channels, float* bias, float* y, in Shape s, int oy0, int j0, int count)
    {
        int wp = s.Wq, wo = s.Wo;
        long plane = (long)s.Ho * wo;
        int j = j0, end = j0 + count;
        while (j < end)
        {
            int r = j / wp, c = j - r * wp;
            if (c >= wo) { j = (r + 1) * wp; continue; }
            int run = Math.Min(wo - c, end - j);
            long o = (long)(oy0 + r) * wo + c;
            for (int ch = 0; ch < channels; ch++)
                AddBias(tile + ch * tileStride + (j - j0), y + ch * plane + o, run, bias == null ? 0f : bias[ch]);
            j += run;
        }
    }

    /// <summary>dst[i] = src[i] + b for i in [0, n).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AddBias(float* src, float* dst, int n, float b)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var bv = Vector512.Create(b);
            for (; i + 16 <= n; i += 16) (Vector512.Load(src + i) + bv).Store(dst + i);
        }
        var bv8 = Vector256.Create(b);
        for (; i + 8 <= n; i += 8) (Vector256.Load(src + i) + bv8).Store(dst + i);
        for (; i < n; i++) dst[i] = src[i] + b;
    }
}
