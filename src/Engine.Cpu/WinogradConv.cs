using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// 3x3 stride-1 pad-1 convolution by Winograd's minimal filtering F(2x2, 3x3) for NCHW tensors.
/// <para>
/// Every 2x2 block of output (a tile) is computed from the 4x4 input patch around it: with the filter
/// transformed once per call, U = G g G^T, and the patch transformed, V = B^T d B, the output is
/// Y = A^T (U ⊙ V) A, and summed over input channels the elementwise product becomes 16 independent
/// GEMMs M_xi [Cout x T] = U_xi [Cout x Cin] V_xi [Cin x T], one per position xi of the 4x4 transform.
/// That is 16 multiplies per tile and channel pair instead of the direct 36: 2.25x fewer, so the
/// products can beat a direct kernel running near the CPU's peak.
/// </para>
/// <para>
/// Layout: U is written straight into the GEMM's packed A panels (one set per xi), V straight into its
/// packed B panels, so the micro-kernel (<see cref="Gemm.RunPacked"/>) runs with no extra copy. Tiles
/// are taken in blocks of T (row-major over images, tile rows, tile columns) so one block's V and M stay
/// near L2 while the 16 products run; blocks run in parallel, or, when there are too few of them (small
/// images), the phases of one block split their channels / products across the threads. The transforms
/// are vectorized over 16 tiles along a tile row: the input rows are split into even and odd columns
/// (so the 4 columns of every patch are plain vector loads at offsets 0 and 1), and the output's two
/// columns per tile are interleaved back on the way out. The transforms' coefficients are 0, ±1 and
/// 1/2, exact in float32, so the extra rounding error is that of the few additions.
/// </para>
/// </summary>
internal static unsafe class WinogradConv
{
    /// <summary>
    /// Tiles per block at most: 64 from 256 channels on, else 128, so one block's V and M (16 Cin T and 16 Cout T
    /// floats) stay near the 2 MB L2 while the block's products run, and each product still has enough columns to
    /// reuse its U panels (measured on 2 cores, noisy: 64 and 128 within 10% of each other at 128-512 channels, 32 slower).
    /// </summary>
    private static int MaxBlockTiles(in Shape s) => Math.Max(s.Cin, s.Cout) >= 256 ? 64 : 128;

    /// <summary>Lanes of the transforms' vectors: tiles processed together along a tile row.</summary>
    private const int Lanes = 16;

    // Each worker's split rows (small); the filters and a block's V and M are rented from KernelScratch.
    [ThreadStatic] private static AlignedBuffer? _rows;

    /// <summary>Shape of one convolution (output is [Batch, Cout, H, W]).</summary>
    public readonly record struct Shape(int Batch, int Cin, int H, int W, int Cout)
    {
        /// <summary>Tile rows and columns of one image (partial tiles at odd sizes).</summary>
        public int TilesH => (H + 1) / 2;
        /// <inheritdoc cref="TilesH"/>
        public int TilesW => (W + 1) / 2;
        /// <summary>All tiles of the batch.</summary>
        public long Tiles => (long)Batch * TilesH * TilesW;
        /// <summary>Channels of the output tensor when this shape computes a slice of them (0: <see cref="Cout"/>).</summary>
        public int YChannels { get; init; }
        /// <summary>Channels of the output tensor: the image stride of y is OutChannels H W.</summary>
        public int OutChannels => YChannels == 0 ? Cout : YChannels;
    }

    /// <summary>
    /// Channel pairs (Cin Cout) whose transformed filters one pass holds: 2^20, 64 MB of scratch. Wider products run
    /// in passes over even slices of the output channels, each transforming its filters and, again, the input.
    /// </summary>
    internal const long MaxPassPairs = 1L << 20;

    /// <summary>
    /// y [batch, cout, h, w] = conv3x3(x [batch, cin, h, w], weights [cout, cin, 3, 3], stride 1, pad 1) + bias.
    /// The weights are float32 (<paramref name="w32"/>) or half (<paramref name="w16"/>, the other null),
    /// transformed without a widened copy; <paramref name="bias"/> may be null.
    /// </summary>
    public static void Run(float* x, float* w32, Half* w16, float* bias, float* y, Shape s, ParallelOptions? options)
    {
        int mr = Gemm.PanelRows, passes = (int)(((long)s.Cin * s.Cout + MaxPassPairs - 1) / MaxPassPairs);
        int slice = passes <= 1 ? s.Cout : ((s.Cout + passes - 1) / passes + mr - 1) / mr * mr;
        long wSlice = (long)slice * s.Cin * 9, ySlice = (long)slice * s.H * s.W;
        for (int co0 = 0, p = 0; co0 < s.Cout; co0 += slice, p++)
            RunPass(x, w32 == null ? null : w32 + p * wSlice, w16 == null ? null : w16 + p * wSlice, bias == null ? null : bias + co0,
                y + p * ySlice, s with { Cout = Math.Min(slice, s.Cout - co0), YChannels = s.OutChannels }, options);
    }

    /// <summary>One pass of <see cref="Run"/>: all output channels of <paramref name="s"/> (a slice of y's when <see cref="Shape.YChannels"/> is set).</summary>
    private static void RunPass(float* x, float* w32, Half* w16, float* bias, float* y, Shape s, ParallelOptions? options)
    {
        int threads = options is null ? 1 : Math.Max(1, options.MaxDegreeOfParallelism < 0 ? Environment.ProcessorCount : options.MaxDegreeOfParallelism);
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
        int mPanels = (s.Cout + mr - 1) / mr;
        long uXi = Spread((long)mPanels * mr * s.Cin);
        using var filters = KernelScratch.Rent(16 * uXi);
        float* u = filters.Pointer;
        TransformFilters(w32, w16, s, u, uXi, mPanels, threads > 1 ? options : null);

        long tiles = s.Tiles;
        // Blocks in parallel when there are at least two per thread; else one block at a time with each
        // phase split across the threads.
        int blockTiles = (int)Math.Min(MaxBlockTiles(s), (tiles + 2L * threads - 1) / (2L * threads));
        blockTiles = Math.Max(nr, (blockTiles + nr - 1) / nr * nr);
        bool outer = threads > 1 && tiles >= 2L * threads * nr;
        if (!outer) blockTiles = (int)Math.Min(MaxBlockTiles(s), (tiles + nr - 1) / nr * nr);
        int blocks = (int)((tiles + blockTiles - 1) / blockTiles);
        var ctx = new Context(x, u, uXi, bias, y, s, blockTiles);
        if (outer)
            Parallel.For(0, blocks, options!, b => RunBlock(ctx, b, null));
        else
            for (int b = 0; b < blocks; b++) RunBlock(ctx, b, threads > 1 ? options : null);
    }

    /// <summary>What every block needs (pointers as <see cref="nint"/> so parallel bodies can capture it).</summary>
    private readonly struct Context(float* x, float* u, long uXi, float* bias, float* y, Shape s, int blockTiles)
    {
        public readonly nint X = (nint)x, U = (nint)u, Bias = (nint)bias, Y = (nint)y;
        public readonly long UXi = uXi;
        public readonly Shape S = s;
        public readonly int BlockTiles = blockTiles;
    }

    /// <summary>Tiles [b T, b T + T) of the batch: input transform, 16 products, output transform.</summary>
    private static void RunBlock(Context c, int b, ParallelOptions? inner)
    {
        var s = c.S;
        int mr = Gemm.PanelRows, nr = Gemm.PanelCols;
        long g0 = (long)b * c.BlockTiles;
        int count = (int)Math.Min(c.BlockTiles, s.Tiles - g0);
        int nPanels = (count + nr - 1) / nr;
        long vXi = Spread((long)nPanels * nr * s.Cin);
        int ldm = (count + Lanes - 1) / Lanes * Lanes;
        long mXi = Spread((long)s.Cout * ldm);
        // Block scratch, rented by the thread that runs the block (the phases may run in parallel inside it).
        using var blockV = KernelScratch.Rent(16 * vXi);
        using var blockM = KernelScratch.Rent(16 * mXi + Lanes);
        nint v = (nint)blockV.Pointer, m = (nint)blockM.Pointer;
        if (count % nr != 0)
        {
            // The micro-kernel reads whole panels: zero the unused columns of the last one.
            int used = count % nr;
            for (int xi = 0; xi < 16; xi++)
                for (int ci = 0; ci < s.Cin; ci++)
                    new Span<float>((float*)v + xi * vXi + (long)(nPanels - 1) * nr * s.Cin + (long)ci * nr + used, nr - used).Clear();
        }
        For(s.Cin, inner, ci => InputTransform((float*)c.X, s, g0, count, ci, (float*)v, vXi));
        For(16, inner, xi => Gemm.RunPacked(s.Cout, count, s.Cin, (float*)c.U + xi * c.UXi, (long)mr * s.Cin,
            (float*)v + xi * vXi, (long)nr * s.Cin, (float*)m + xi * mXi, ldm, accumulate: false));
        For(s.Cout, inner, co => OutputTransform((float*)m, mXi, ldm, s, g0, count, co, (float*)c.Bias, (float*)c.Y));
    }

    /// <summary>
    /// The distance between the 16 matrices of one kind, padded to an odd number of cache lines (still 64-byte
    /// aligned) so the transforms' 16 streams do not all fall into the same L1 sets, as they would at a
    /// multiple of 4 KB apart (512 x 512 floats, say).
    /// </summary>
    private static long Spread(long floats) => ((floats + 15) / 16 | 1) * 16;

    private static void For(int count, ParallelOptions? options, Action<int> body)
    {
        if (options is null) { for (int i = 0; i < count; i++) body(i); return; }
        Parallel.For(0, count, options, body);
    }

    /// <summary>
    /// U_xi = (G g G^T)[i, j] for xi = 4 i + j, G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]],
    /// written as packed A panels: u[xi uXi + (co / MR) MR Cin + ci MR + co % MR]; rows past Cout zero.
    /// </summary>
    private static void TransformFilters(float* w32, Half* w16, in Shape s, float* u, long uXi, int mPanels, ParallelOptions? options)
    {
        int mr = Gemm.PanelRows, cin = s.Cin, cout = s.Cout;
        nint pw32 = (nint)w32, pw16 = (nint)w16, pu = (nint)u;
        For(mPanels, options, ip =>
        {
            // The panel's MR rows side by side: g[q * MR + r] = tap q of output channel ip MR + r (zero past Cout),
            // so the transform runs on all rows at once and each result is one contiguous store into the panel.
            float* g = stackalloc float[9 * 16];
            float* t = stackalloc float[12 * 16];
            int rows = Math.Min(mr, cout - ip * mr);
            for (int ci = 0; ci < cin; ci++)
            {
                for (int r = 0; r < mr; r++)
                {
                    long k = ((long)(ip * mr + r) * cin + ci) * 9;
                    if (r >= rows) for (int q = 0; q < 9; q++) g[q * mr + r] = 0f;
                    else if (pw32 != 0) for (int q = 0; q < 9; q++) g[q * mr + r] = ((float*)pw32)[k + q];
                    else for (int q = 0; q < 9; q++) g[q * mr + r] = (float)((Half*)pw16)[k + q];
                }
                float* dst = (float*)pu + ((long)ip * cin + ci) * mr;
                if (mr == 8) Transform8(g, t, dst, uXi);
                else TransformScalar(g, t, dst, uXi, mr);
            }
        });
    }

    /// <summary>G g G^T for 8 filters side by side (one Vector256 per tap), stored as 16 rows of 8 at stride <paramref name="uXi"/>.</summary>
    private static void Transform8(float* g, float* t, float* dst, long uXi)
    {
        var half = Vector256.Create(0.5f);
        // G g: 4 rows of 3 taps.
        for (int col = 0; col < 3; col++)
        {
            var a = Vector256.Load(g + 8 * col); var b = Vector256.Load(g + 8 * (3 + col)); var c = Vector256.Load(g + 8 * (6 + col));
            a.Store(t + 8 * col); (half * (a + b + c)).Store(t + 8 * (3 + col)); (half * (a - b + c)).Store(t + 8 * (6 + col)); c.Store(t + 8 * (9 + col));
        }
        // (G g) G^T: each row of 3 taps becomes 4 entries.
        for (int i = 0; i < 4; i++)
        {
            var a = Vector256.Load(t + 8 * (3 * i)); var b = Vector256.Load(t + 8 * (3 * i + 1)); var c = Vector256.Load(t + 8 * (3 * i + 2));
            a.Store(dst + 4 * i * uXi);
            (half * (a + b + c)).Store(dst + (4 * i + 1) * uXi);
            (half * (a - b + c)).Store(dst + (4 * i + 2) * uXi);
            c.Store(dst + (4 * i + 3) * uXi);
        }
    }

    /// <summary><see cref="Transform8"/> for panels of any height (the AVX2 GEMM's 6 rows).</summary>
    private static void TransformScalar(float* g, float* t, float* dst, long uXi, int mr)
    {
        for (int r = 0; r < mr; r++)
        {
            for (int col = 0; col < 3; col++)
            {
                float a = g[col * mr + r], b = g[(3 + col) * mr + r], c = g[(6 + col) * mr + r];
                t[3 * 0 + col] = a; t[3 * 1 + col] = 0.5f * (a + b + c); t[3 * 2 + col] = 0.5f * (a - b + c); t[3 * 3 + col] = c;
            }
            for (int i = 0; i < 4; i++)
            {
                float a = t[3 * i], b = t[3 * i + 1], c = t[3 * i + 2];
                dst[4 * i * uXi + r] = a;
                dst[(4 * i + 1) * uXi + r] = 0.5f * (a + b + c);
                dst[(4 * i + 2) * uXi + r] = 0.5f * (a - b + c);
                dst[(4 * i + 3) * uXi + r] = c;
            }
        }
    }

    /// <summary>The stretch of tiles from global tile <paramref name="g"/> to the end of its tile row or of the block.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (int N, int Ty, int Tx, int Len) Segment(in Shape s, long g, long end)
    {
        int perImage = s.TilesH * s.TilesW;
        int n = (int)(g / perImage), rest = (int)(g - (long)n * perImage);
        int ty = rest / s.TilesW, tx = rest - ty * s.TilesW;
        return (n, ty, tx, (int)Math.Min(s.TilesW - tx, end - g));
    }

    /// <summary>
    /// V_xi for channel <paramref name="ci"/> of the block's tiles: V = B^T d B with B^T = [[1, 0, -1, 0],
    /// [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]] on the patch d of rows 2 ty - 1 .. 2 ty + 2 and columns
    /// 2 tx - 1 .. 2 tx + 2 (zero outside the image), stored in packed B panels at column t % NR of panel t / NR.
    /// </summary>
    private static void InputTransform(float* x, in Shape s, long g0, int count, int ci, float* v, long vXi)
    {
        int nr = Gemm.PanelCols, cin = s.Cin;
        // Even / odd columns of the 4 patch rows, then their row transform, in place.
        int span = (s.TilesW + 1 + 2 * Lanes) / Lanes * Lanes;
        float* rows = (_rows ??= new AlignedBuffer()).Ensure(8L * span);
        float* tmp = stackalloc float[Lanes];
        if (ci + 1 < cin && Sse.IsSupported) PrefetchRows(x, s, g0, count, ci + 1);
        for (long g = g0; g < g0 + count;)
        {
            var (n, ty, tx0, len) = Segment(s, g, g0 + count);
            float* plane = x + ((long)n * cin + ci) * s.H * s.W;
            // Entries the chunks read (len + 1 + a vector's overhang), whole vectors.
            int fill = (len + 1 + 2 * Lanes - 1) / Lanes * Lanes;
            for (int r = 0; r < 4; r++)
            {
                int iy = 2 * ty - 1 + r;
                Split(iy >= 0 && iy < s.H ? plane + (long)iy * s.W : null, s.W, tx0, len, fill, rows + 2 * r * span, rows + (2 * r + 1) * span);
            }
            // Row transform (B^T d) on the even and odd arrays alike: w0 = d0 - d2, w1 = d1 + d2, w2 = d2 - d1, w3 = d1 - d3.
            for (int k = 0; k < fill; k += Lanes)
                for (int h = 0; h < 2; h++)
                {
                    float* p0 = rows + h * span + k, p1 = p0 + 2 * span, p2 = p0 + 4 * span, p3 = p0 + 6 * span;
                    var d0 = Vector512.Load(p0); var d1 = Vector512.Load(p1); var d2 = Vector512.Load(p2); var d3 = Vector512.Load(p3);
                    (d0 - d2).Store(p0); (d1 + d2).Store(p1); (d2 - d1).Store(p2); (d1 - d3).Store(p3);
                }
            int t = (int)(g - g0);
            for (int c = 0; c < len; c += Lanes, t += Lanes)
            {
                int valid = Math.Min(Lanes, len - c);
                bool whole = valid == Lanes && t % nr + Lanes <= nr;
                for (int i = 0; i < 4; i++)
                {
                    float* e = rows + 2 * i * span + c, o = e + span;
                    var e0 = Vector512.Load(e); var e1 = Vector512.Load(e + 1);
                    var o0 = Vector512.Load(o); var o1 = Vector512.Load(o + 1);
                    // Column transform: patch columns are e0, o0, e1, o1.
                    Store(e0 - e1, v + (4 * i) * vXi, t, ci, cin, nr, whole, valid, tmp);
                    Store(o0 + e1, v + (4 * i + 1) * vXi, t, ci, cin, nr, whole, valid, tmp);
                    Store(e1 - o0, v + (4 * i + 2) * vXi, t, ci, cin, nr, whole, valid, tmp);
                    Store(o0 - o1, v + (4 * i + 3) * vXi, t, ci, cin, nr, whole, valid, tmp);
                }
            }
            g += len;
        }
    }

    /// <summary>
    /// Asks for the input rows channel <paramref name="ci"/> will read for this block while the current channel is
    /// transformed: its rows are short runs a whole plane apart, which the hardware prefetcher does not predict.
    /// </summary>
    private static void PrefetchRows(float* x, in Shape s, long g0, int count, int ci)
    {
        var (n0, ty0, _, _) = Segment(s, g0, g0 + count);
        var (n1, ty1, _, _) = Segment(s, g0 + count - 1, g0 + count);
        for (int n = n0; n <= n1; n++)
        {
            int r0 = n == n0 ? Math.Max(0, 2 * ty0 - 1) : 0, r1 = n == n1 ? Math.Min(s.H, 2 * ty1 + 3) : s.H;
            byte* start = (byte*)(x + (((long)n * s.Cin + ci) * s.H + r0) * s.W), end = (byte*)(x + (((long)n * s.Cin + ci) * s.H + r1) * s.W);
            for (byte* p = start; p < end; p += 64) Sse.Prefetch0(p);
        }
    }

    /// <summary>Lanes of <paramref name="value"/> to tiles t.. of the packed panels of one xi (channel <paramref name="ci"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Vector512<float> value, float* panels, int t, int ci, int cin, int nr, bool whole, int valid, float* tmp)
    {
        if (whole) { value.Store(panels + ((long)(t / nr) * cin + ci) * nr + t % nr); return; }
        value.Store(tmp);
        for (int l = 0; l < valid; l++)
        {
            int tt = t + l;
            panels[((long)(tt / nr) * cin + ci) * nr + tt % nr] = tmp[l];
        }
    }

    /// <summary>
    /// Splits the padded row (column -1 and columns from W on are zero; a null row is all zero) for tile
    /// columns tx0 .. tx0 + len: even[k] = row[2 (tx0 + k) - 1], odd[k] = row[2 (tx0 + k)] for k = 0 .. len,
    /// then zeros up to <paramref name="fill"/>.
    /// </summary>
    private static void Split(float* row, int w, int tx0, int len, int fill, float* even, float* odd)
    {
        int k = 0;
        if (row != null)
        {
            // 32 input columns give 16 odd entries (at k) and 16 even entries (at k + 1).
            if (Avx512F.IsSupported)
            {
                var evens = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
                var odds = evens + Vector512<int>.One;
                for (; k + Lanes <= len + 1 && 2 * (tx0 + k) + 2 * Lanes <= w; k += Lanes)
                {
                    float* src = row + 2 * (tx0 + k);
                    var lo = Vector512.Load(src); var hi = Vector512.Load(src + Lanes);
                    Avx512F.PermuteVar16x32x2(lo, evens, hi).Store(odd + k);
                    var shifted = Avx512F.PermuteVar16x32x2(lo, odds, hi);
                    // even[k + 1 ..] = row[2 (tx0 + k) + 1 ..]; even[k] comes from the previous chunk or below.
                    even[k] = 2 * (tx0 + k) - 1 >= 0 ? row[2 * (tx0 + k) - 1] : 0f;
                    shifted.Store(even + k + 1);
                }
            }
            for (; k <= len; k++)
            {
                int ce = 2 * (tx0 + k) - 1, co = ce + 1;
                even[k] = ce >= 0 && ce < w ? row[ce] : 0f;
                odd[k] = co < w ? row[co] : 0f;
            }
        }
        if (k < fill) { new Span<float>(even + k, fill - k).Clear(); new Span<float>(odd + k, fill - k).Clear(); }
    }

    /// <summary>
    /// Output channel <paramref name="co"/> of the block's tiles: Y = A^T M A + bias with A^T = [[1, 1, 1, 0],
    /// [0, 1, -1, -1]], the 2x2 result written to rows 2 ty, 2 ty + 1 and columns 2 tx, 2 tx + 1 inside the image.
    /// </summary>
    private static void OutputTransform(float* m, long mXi, int ldm, in Shape s, long g0, int count, int co, float* bias, float* y)
    {
        var b = Vector512.Create(bias == null ? 0f : bias[co]);
        float* tmp = stackalloc float[4 * Lanes];
        float* row = m + (long)co * ldm;
        for (long g = g0; g < g0 + count;)
        {
            var (n, ty, tx0, len) = Segment(s, g, g0 + count);
            float* plane = y + ((long)n * s.OutChannels + co) * s.H * s.W;
            int oy = 2 * ty, t = (int)(g - g0);
            bool second = oy + 1 < s.H;
            for (int c = 0; c < len; c += Lanes, t += Lanes)
            {
                // Row transform (A^T M): s_j = M0j + M1j + M2j, d_j = M1j - M2j - M3j.
                Vector512<float> s0, s1, s2, s3, d0, d1, d2, d3;
                float* p = row + t;
                var m0 = Vector512.Load(p); var m1 = Vector512.Load(p + mXi); var m2 = Vector512.Load(p + 2 * mXi); var m3 = Vector512.Load(p + 3 * mXi);
                s0 = m0; s1 = m1; s2 = m2; s3 = m3;
                p += 4 * mXi;
                m0 = Vector512.Load(p); m1 = Vector512.Load(p + mXi); m2 = Vector512.Load(p + 2 * mXi); m3 = Vector512.Load(p + 3 * mXi);
                s0 += m0; s1 += m1; s2 += m2; s3 += m3; d0 = m0; d1 = m1; d2 = m2; d3 = m3;
                p += 4 * mXi;
                m0 = Vector512.Load(p); m1 = Vector512.Load(p + mXi); m2 = Vector512.Load(p + 2 * mXi); m3 = Vector512.Load(p + 3 * mXi);
                s0 += m0; s1 += m1; s2 += m2; s3 += m3; d0 -= m0; d1 -= m1; d2 -= m2; d3 -= m3;
                p += 4 * mXi;
                m0 = Vector512.Load(p); m1 = Vector512.Load(p + mXi); m2 = Vector512.Load(p + 2 * mXi); m3 = Vector512.Load(p + 3 * mXi);
                d0 -= m0; d1 -= m1; d2 -= m2; d3 -= m3;
                // Column transform (. A).
                var y00 = s0 + s1 + s2 + b; var y01 = s1 - s2 - s3 + b;
                var y10 = d0 + d1 + d2 + b; var y11 = d1 - d2 - d3 + b;
                int ox = 2 * (tx0 + c), valid = Math.Min(Lanes, len - c);
                float* out0 = plane + (long)oy * s.W + ox;
                if (valid == Lanes && ox + 2 * Lanes <= s.W && Avx512F.IsSupported)
                {
                    Interleave(y00, y01, out0);
                    if (second) Interleave(y10, y11, out0 + s.W);
                    continue;
                }
                y00.Store(tmp); y01.Store(tmp + Lanes); y10.Store(tmp + 2 * Lanes); y11.Store(tmp + 3 * Lanes);
                int cols = Math.Min(2 * valid, s.W - ox);
                for (int q = 0; q < cols; q++) out0[q] = tmp[(q & 1) * Lanes + (q >> 1)];
                if (second) for (int q = 0; q < cols; q++) out0[s.W + q] = tmp[(2 + (q & 1)) * Lanes + (q >> 1)];
            }
            g += len;
        }
    }

    /// <summary>dst[2 l] = a[l], dst[2 l + 1] = b[l] for the 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Interleave(Vector512<float> a, Vector512<float> b, float* dst)
    {
        var lo = Vector512.Create(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        var hi = lo + Vector512.Create(8);
        Avx512F.PermuteVar16x32x2(a, lo, b).Store(dst);
        Avx512F.PermuteVar16x32x2(a, hi, b).Store(dst + Lanes);
    }
}
