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
/// Why: with the 32-64 output channels of small UNets the GEMM path packs as many column floats as it
/// multiplies, so packing costs as much as the arithmetic; here the only copy is the padded input, once
/// per band, shared by every output channel.
/// </para>
/// </summary>
internal static unsafe class DirectConv
{
    /// <summary>Output channels per micro-kernel tile.</summary>
    private const int CoTile = 4;

    /// <summary>Floats of padded input one job may hold (1 MB): bounds the band height for large images.</summary>
    private const long BandBudget = 256 * 1024;

    [ThreadStatic] private static AlignedBuffer? _band;

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
    public static void Run(float* x, float* w, float* bias, float* y, Shape s, bool wide, ParallelOptions? options)
    {
        int threads = options is null ? 1 : Math.Max(1, options.MaxDegreeOfParallelism < 0 ? Environment.ProcessorCount : options.MaxDegreeOfParallelism);
        int ho = s.Ho, coBlocks = (s.Cout + CoTile - 1) / CoTile;
        // Band height: all rows unless the padded band would outgrow the budget.
        int maxRows = (int)Math.Clamp((BandBudget / ((long)s.Cin * s.Wp) - s.Kh) / s.Stride + 1, 1, ho);
        int bands = (ho + maxRows - 1) / maxRows, groups = 1;
        // Two jobs per thread: enough to balance the threads, few enough to keep the dispatch small.
        // Split bands while they keep >= 4 rows (each split copies kh - 1 halo rows again), then output
        // channels (each split copies the band again).
        int target = threads == 1 ? 1 : 2 * threads;
        while ((long)s.Batch * bands * groups < target)
        {
            if (ho / (bands * 2) >= 4) bands *= 2;
            else if (coBlocks / (groups * 2) >= 1) groups *= 2;
            else break;
        }
        int bandRows = (ho + bands - 1) / bands;
        bands = (ho + bandRows - 1) / bandRows;
        int blocksPerGroup = (coBlocks + groups - 1) / groups;
        groups = (coBlocks + blocksPerGroup - 1) / blocksPerGroup;
        int jobs = s.Batch * bands * groups;
        nint px = (nint)x, pw = (nint)w, pb = (nint)bias, py = (nint)y;
        void Job(int job)
        {
            int n = job / (bands * groups), rest = job - n * bands * groups, band = rest / groups, group = rest - band * groups;
            int oy0 = band * bandRows, rows = Math.Min(bandRows, ho - oy0);
            int b0 = group * blocksPerGroup, b1 = Math.Min(coBlocks, b0 + blocksPerGroup);
            RunBand((float*)px + (long)n * s.Cin * s.H * s.W, (float*)pw, (float*)pb,
                (float*)py + (long)n * s.Cout * ho * s.Wo, s, oy0, rows, b0 * CoTile, Math.Min(s.Cout, b1 * CoTile), wide);
        }
        if (jobs == 1 || threads == 1) for (int j = 0; j < jobs; j++) Job(j);
        else Parallel.For(0, jobs, options!, Job);
    }

    /// <summary>Output rows [oy0, oy0 + rows) and channels [co0, co1) of one image.</summary>
    private static void RunBand(float* x, float* w, float* bias, float* y, in Shape s, int oy0, int rows, int co0, int co1, bool wide)
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
        int maxVectors = wide ? 6 : 3, tileStride = maxVectors * vl;
        float* tile = stackalloc float[CoTile * 6 * 16];
        long wRow = (long)s.Cin * taps;
        for (int v0 = 0; v0 < vectors; v0 += maxVectors)
        {
            int nv = Math.Min(maxVectors, vectors - v0), j0 = v0 * vl;
            float* xs = band + j0;
            for (int co = co0; co < co1; co += CoTile)
            {
                int count = Math.Min(CoTile, co1 - co);
                // Missing channels of a partial tile reuse the first row of weights; their results are dropped.
                float* w0 = w + co * wRow;
                float* w1 = count > 1 ? w0 + wRow : w0, w2 = count > 2 ? w0 + 2 * wRow : w0, w3 = count > 3 ? w0 + 3 * wRow : w0;
                if (wide)
                    switch (nv)
                    {
                        case 1: Tile512<N1>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        case 2: Tile512<N2>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        case 3: Tile512<N3>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        case 4: Tile512<N4>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        case 5: Tile512<N5>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        default: Tile512<N6>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                    }
                else
                    switch (nv)
                    {
                        case 1: Tile256<N1>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        case 2: Tile256<N2>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                        default: Tile256<N3>(xs, planeStride, s.Cin, offsets, taps, w0, w1, w2, w3, tile, tileStride); break;
                    }
                StoreTile(tile, tileStride, count, bias == null ? null : bias + co, y + (long)co * s.Ho * s.Wo, s, oy0, j0,
                    Math.Min(nv * vl, positions - j0));
            }
        }
    }

    /// <summary>
    /// Copies input rows [iy0, iy0 + rowsIn) of every channel into the band, each row framed by the
    /// padding zeros (rows outside the image all zero) and split into the stride's phase planes, plus
    /// zeroed slack after each phase plane.
    /// </summary>
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
            {
                float* src = tile + ch * tileStride + (j - j0), dst = y + ch * plane + o;
                float b = bias == null ? 0f : bias[ch];
                int i = 0;
                if (Vector512.IsHardwareAccelerated)
                {
                    var bv = Vector512.Create(b);
                    for (; i + 16 <= run; i += 16) (Vector512.Load(src + i) + bv).Store(dst + i);
                }
                var bv8 = Vector256.Create(b);
                for (; i + 8 <= run; i += 8) (Vector256.Load(src + i) + bv8).Store(dst + i);
                for (; i < run; i++) dst[i] = src[i] + b;
            }
            j += run;
        }
    }

    /// <summary>A compile-time count of position vectors: each instantiation of the kernels keeps exactly that many accumulators per channel.</summary>
    private interface IVectors { static abstract int Count { get; } }
    private struct N1 : IVectors { public static int Count => 1; }
    private struct N2 : IVectors { public static int Count => 2; }
    private struct N3 : IVectors { public static int Count => 3; }
    private struct N4 : IVectors { public static int Count => 4; }
    private struct N5 : IVectors { public static int Count => 5; }
    private struct N6 : IVectors { public static int Count => 6; }

    // The kernels are unrolled by hand: each accumulator is its own local so the JIT keeps all of them
    // in registers across the channel loop; branches on TV.Count are folded per instantiation.

    /// <summary>4 channels x TV.Count x 16 positions over all input channels and taps (AVX-512: 24 accumulators + 4 broadcasts + 1 input).</summary>
    private static void Tile512<TV>(float* x, long planeStride, int cin, int* offsets, int taps,
        float* w0, float* w1, float* w2, float* w3, float* tile, int tileStride) where TV : struct, IVectors
    {
        Vector512<float> a00 = default, a01 = default, a02 = default, a03 = default, a04 = default, a05 = default;
        Vector512<float> a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        Vector512<float> a20 = default, a21 = default, a22 = default, a23 = default, a24 = default, a25 = default;
        Vector512<float> a30 = default, a31 = default, a32 = default, a33 = default, a34 = default, a35 = default;
        for (int ci = 0; ci < cin; ci++)
        {
            for (int t = 0; t < taps; t++)
            {
                float* p = x + offsets[t];
                var b0 = Vector512.Create(w0[t]); var b1 = Vector512.Create(w1[t]);
                var b2 = Vector512.Create(w2[t]); var b3 = Vector512.Create(w3[t]);
                var v = Vector512.Load(p);
                a00 = Vector512.FusedMultiplyAdd(v, b0, a00); a10 = Vector512.FusedMultiplyAdd(v, b1, a10);
                a20 = Vector512.FusedMultiplyAdd(v, b2, a20); a30 = Vector512.FusedMultiplyAdd(v, b3, a30);
                if (TV.Count > 1)
                {
                    v = Vector512.Load(p + 16);
                    a01 = Vector512.FusedMultiplyAdd(v, b0, a01); a11 = Vector512.FusedMultiplyAdd(v, b1, a11);
                    a21 = Vector512.FusedMultiplyAdd(v, b2, a21); a31 = Vector512.FusedMultiplyAdd(v, b3, a31);
                }
                if (TV.Count > 2)
                {
                    v = Vector512.Load(p + 32);
                    a02 = Vector512.FusedMultiplyAdd(v, b0, a02); a12 = Vector512.FusedMultiplyAdd(v, b1, a12);
                    a22 = Vector512.FusedMultiplyAdd(v, b2, a22); a32 = Vector512.FusedMultiplyAdd(v, b3, a32);
                }
                if (TV.Count > 3)
                {
                    v = Vector512.Load(p + 48);
                    a03 = Vector512.FusedMultiplyAdd(v, b0, a03); a13 = Vector512.FusedMultiplyAdd(v, b1, a13);
                    a23 = Vector512.FusedMultiplyAdd(v, b2, a23); a33 = Vector512.FusedMultiplyAdd(v, b3, a33);
                }
                if (TV.Count > 4)
                {
                    v = Vector512.Load(p + 64);
                    a04 = Vector512.FusedMultiplyAdd(v, b0, a04); a14 = Vector512.FusedMultiplyAdd(v, b1, a14);
                    a24 = Vector512.FusedMultiplyAdd(v, b2, a24); a34 = Vector512.FusedMultiplyAdd(v, b3, a34);
                }
                if (TV.Count > 5)
                {
                    v = Vector512.Load(p + 80);
                    a05 = Vector512.FusedMultiplyAdd(v, b0, a05); a15 = Vector512.FusedMultiplyAdd(v, b1, a15);
                    a25 = Vector512.FusedMultiplyAdd(v, b2, a25); a35 = Vector512.FusedMultiplyAdd(v, b3, a35);
                }
            }
            x += planeStride; w0 += taps; w1 += taps; w2 += taps; w3 += taps;
        }
        float* t0 = tile, t1 = tile + tileStride, t2 = tile + 2 * tileStride, t3 = tile + 3 * tileStride;
        a00.Store(t0); a10.Store(t1); a20.Store(t2); a30.Store(t3);
        if (TV.Count > 1) { a01.Store(t0 + 16); a11.Store(t1 + 16); a21.Store(t2 + 16); a31.Store(t3 + 16); }
        if (TV.Count > 2) { a02.Store(t0 + 32); a12.Store(t1 + 32); a22.Store(t2 + 32); a32.Store(t3 + 32); }
        if (TV.Count > 3) { a03.Store(t0 + 48); a13.Store(t1 + 48); a23.Store(t2 + 48); a33.Store(t3 + 48); }
        if (TV.Count > 4) { a04.Store(t0 + 64); a14.Store(t1 + 64); a24.Store(t2 + 64); a34.Store(t3 + 64); }
        if (TV.Count > 5) { a05.Store(t0 + 80); a15.Store(t1 + 80); a25.Store(t2 + 80); a35.Store(t3 + 80); }
    }

    /// <summary>4 channels x TV.Count x 8 positions (AVX2: 12 accumulators + 3 inputs + 1 broadcast fill the 16 registers).</summary>
    private static void Tile256<TV>(float* x, long planeStride, int cin, int* offsets, int taps,
        float* w0, float* w1, float* w2, float* w3, float* tile, int tileStride) where TV : struct, IVectors
    {
        Vector256<float> a00 = default, a01 = default, a02 = default;
        Vector256<float> a10 = default, a11 = default, a12 = default;
        Vector256<float> a20 = default, a21 = default, a22 = default;
        Vector256<float> a30 = default, a31 = default, a32 = default;
        for (int ci = 0; ci < cin; ci++)
        {
            for (int t = 0; t < taps; t++)
            {
                float* p = x + offsets[t];
                var v0 = Vector256.Load(p);
                var v1 = TV.Count > 1 ? Vector256.Load(p + 8) : default;
                var v2 = TV.Count > 2 ? Vector256.Load(p + 16) : default;
                var b = Vector256.Create(w0[t]);
                a00 = Vector256.FusedMultiplyAdd(v0, b, a00);
                if (TV.Count > 1) a01 = Vector256.FusedMultiplyAdd(v1, b, a01);
                if (TV.Count > 2) a02 = Vector256.FusedMultiplyAdd(v2, b, a02);
                b = Vector256.Create(w1[t]);
                a10 = Vector256.FusedMultiplyAdd(v0, b, a10);
                if (TV.Count > 1) a11 = Vector256.FusedMultiplyAdd(v1, b, a11);
                if (TV.Count > 2) a12 = Vector256.FusedMultiplyAdd(v2, b, a12);
                b = Vector256.Create(w2[t]);
                a20 = Vector256.FusedMultiplyAdd(v0, b, a20);
                if (TV.Count > 1) a21 = Vector256.FusedMultiplyAdd(v1, b, a21);
                if (TV.Count > 2) a22 = Vector256.FusedMultiplyAdd(v2, b, a22);
                b = Vector256.Create(w3[t]);
                a30 = Vector256.FusedMultiplyAdd(v0, b, a30);
                if (TV.Count > 1) a31 = Vector256.FusedMultiplyAdd(v1, b, a31);
                if (TV.Count > 2) a32 = Vector256.FusedMultiplyAdd(v2, b, a32);
            }
            x += planeStride; w0 += taps; w1 += taps; w2 += taps; w3 += taps;
        }
        float* t0 = tile, t1 = tile + tileStride, t2 = tile + 2 * tileStride, t3 = tile + 3 * tileStride;
        a00.Store(t0); a10.Store(t1); a20.Store(t2); a30.Store(t3);
        if (TV.Count > 1) { a01.Store(t0 + 8); a11.Store(t1 + 8); a21.Store(t2 + 8); a31.Store(t3 + 8); }
        if (TV.Count > 2) { a02.Store(t0 + 16); a12.Store(t1 + 16); a22.Store(t2 + 16); a32.Store(t3 + 16); }
    }
}
