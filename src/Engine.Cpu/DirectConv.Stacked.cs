using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace Engine.Cpu;

internal static unsafe partial class DirectConv
{
    /// <summary>Bytes of the band one input-channel block may take on the stacked route (of 2 MB of L2).</summary>
    private const int StackedBandBudget = 512 * 1024;

    /// <summary>Bytes of one output-channel tile's widened weights for one input-channel block (of 48 KB of L1).</summary>
    private const int StackedWeightBudget = 24 * 1024;

    /// <summary>Floats of partial sums one job keeps (a chunk of output-channel tiles over all positions; 256 KB).</summary>
    private const int StackedSumsBudget = 64 * 1024;

    [ThreadStatic] private static AlignedBuffer? _weightBlock;

    /// <summary>
    /// Few output positions (the UNet's 8x8 and 16x16 convolutions with 640-2560 channels): all images of the batch
    /// stacked into one band and every weight read from memory once per call.
    /// <para>
    /// The images are stacked as band rows, image n's padded rows starting at row n slot, so one 1-D correlation over the
    /// band covers the whole batch (the few output rows between images are computed and dropped). The band is filled
    /// once, in parallel over channels, and shared; jobs split the output-channel tiles. Per job, input channels go in
    /// blocks whose band fits L2; per block each output-channel tile's weights (half widened, float32 copied, into an L1
    /// block of 4 kc kh kw floats, so no packed copy of the tensor is written per call nor kept per thread)
    /// serve every tile of positions of the batch before the next tile's are read; partial sums of all positions wait
    /// in scratch between blocks. Per-image jobs instead read all weights once per image, and the earlier per-call
    /// packing wrote a widened float32 copy of the weights (59-118 MB) and read it back.
    /// </para>
    /// Each output sums its input channels and taps in the same order as <see cref="RunBand"/> (blocks only pause the
    /// accumulators), so results do not depend on the batch size or on this route.
    /// </summary>
    private static void RunStacked(float* x, float* w, Half* w16, float* bias, float* y, Shape s, bool wide, int threads, ParallelOptions? options)
    {
        int stride = s.Stride, ho = s.Ho, vl = wide ? 16 : 8, taps = s.Kh * s.Kw;
        // Rows per image slot: the image's padded rows (the bottom padding may overlap the next image's top padding,
        // which is zero too), whole output rows per slot, a multiple of the stride so the phase planes line up.
        int maxRow = (ho - 1) * stride + s.Kh - 1;
        int slot = Math.Max(Math.Max(s.H + s.Padding, maxRow - s.Padding + 1), ho * stride);
        slot = (slot + stride - 1) / stride * stride;
        int slotOut = slot / stride, rowsOut = (s.Batch - 1) * slotOut + ho, rowsIn = (rowsOut - 1) * stride + s.Kh;
        // One copy of the band per row phase and kernel column, output rows Wo apart (see FillCopies); slack of a vector.
        int wq = s.Wo, rowsQ = (rowsIn + stride - 1) / stride, copies = stride * s.Kw;
        long copyStride = ((long)rowsQ * wq + vl + 15) & ~15L, planeStride = copyStride * copies;
        // The shared band (up to ~17 MB at 2560 channels, 16x16, batch 2) from the device-wide scratch, not kept per thread.
        using var bandLease = KernelScratch.Rent(planeStride * s.Cin);
        float* band = bandLease.Pointer;
        nint px = (nint)x, pband = (nint)band;
        int fillJobs = threads > 1 && s.Cin >= 64 ? 2 * threads : 1, perFill = (s.Cin + fillJobs - 1) / fillJobs;
        if (fillJobs == 1) FillCopies(x, band, copyStride, s, rowsQ, slot, s.Batch, 0, s.Cin);
        else
            Parallel.For(0, fillJobs, options!, f => FillCopies((float*)px, (float*)pband, copyStride, s, rowsQ, slot, s.Batch,
                Math.Min(s.Cin, f * perFill), Math.Min(s.Cin, (f + 1) * perFill)));

        // Tiles of positions run over segments: each image's own positions (Ho Wo from row n slotOut; its last vector may
        // read past them and its sums are dropped), or, where that takes fewer vectors (tiny images), the stacked band
        // as one segment including the rows between images. 8x8 at batch 2: 4 vectors per image, 8 in all, against 9
        // stacked and 10 for the shared band's pad columns per image.
        int perImage = (ho * wq + vl - 1) / vl, stacked = (rowsOut * wq + vl - 1) / vl;
        bool byImage = (long)perImage * s.Batch <= stacked;
        int segments = byImage ? s.Batch : 1, vectors = byImage ? perImage : stacked, segBand = byImage ? slotOut * wq : 0;
        int segSums = vectors * vl, posStride = segments * segSums, imagePitch = byImage ? segSums : slotOut * wq;
        int maxVectors = wide ? 6 : 3, posTiles = (vectors + maxVectors - 1) / maxVectors;
        // Input-channel blocks: the band's block within the L2 budget and a tile's widened weights within the L1 one,
        // evened out over the channels.
        long kcMax = Math.Min(StackedBandBudget / (planeStride * sizeof(float)), StackedWeightBudget / (CoTile * taps * sizeof(float)));
        int kcBlocks = (int)((s.Cin + Math.Max(4, kcMax) - 1) / Math.Max(4, kcMax)), kc = (s.Cin + kcBlocks - 1) / kcBlocks;
        int coBlocks = (s.Cout + CoTile - 1) / CoTile;
        int chunkTiles = Math.Max(1, StackedSumsBudget / (CoTile * posStride));
        // Four jobs per thread balance a loaded machine; each only re-reads the shared band, not the weights.
        int jobs = threads == 1 ? 1 : Math.Min(coBlocks, 4 * threads), perJob = (coBlocks + jobs - 1) / jobs;
        jobs = (coBlocks + perJob - 1) / perJob;
        nint pw = (nint)w, pw16 = (nint)w16, pb = (nint)bias, py = (nint)y;
        void Job(int job)
        {
            int cb0 = job * perJob, cb1 = Math.Min(coBlocks, cb0 + perJob);
            StackedJob((float*)pband, planeStride, copyStride, (float*)pw, (Half*)pw16, (float*)pb, (float*)py, s, wide, cb0, cb1,
                chunkTiles, kc, segments, segBand, segSums, vectors, posStride, posTiles, imagePitch);
        }
        if (jobs == 1) Job(0);
        else Parallel.For(0, jobs, options!, Job);
    }

    /// <summary>Output-channel tiles [cb0, cb1) of every image from the shared stacked band (see <see cref="RunStacked"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StackedJob(float* band, long planeStride, long copyStride, float* w, Half* w16, float* bias, float* y, in Shape s, bool wide,
        int cb0, int cb1, int chunkTiles, int kc, int segments, int segBand, int segSums, int vectors, int posStride, int posTiles, int imagePitch)
    {
        int stride = s.Stride, wq = s.Wo, vl = wide ? 16 : 8, taps = s.Kh * s.Kw;
        // Tap (ky, kx) of output position j reads copy (ky % stride, kx) at j + (ky / stride) Wo.
        int* offsets = stackalloc int[taps];
        for (int ky = 0; ky < s.Kh; ky++)
            for (int kx = 0; kx < s.Kw; kx++)
                offsets[ky * s.Kw + kx] = (int)((ky % stride * s.Kw + kx) * copyStride) + ky / stride * wq;
        long wRow = (long)s.Cin * taps;
        float* sums = (_sums ??= new AlignedBuffer()).Ensure((long)Math.Min(chunkTiles, cb1 - cb0) * CoTile * posStride);
        float* block = (_weightBlock ??= new AlignedBuffer()).Ensure((long)CoTile * kc * taps);
        for (int ca = cb0; ca < cb1; ca += chunkTiles)
        {
            int cz = Math.Min(cb1, ca + chunkTiles);
            for (int ci0 = 0; ci0 < s.Cin; ci0 += kc)
            {
                int kcb = Math.Min(kc, s.Cin - ci0), n = kcb * taps;
                float* xs = band + ci0 * planeStride;
                for (int cb = ca; cb < cz; cb++)
                {
                    // Missing channels of a partial tile reuse the first row of weights; their results are dropped.
                    int count = Math.Min(CoTile, s.Cout - cb * CoTile);
                    long first = (long)cb * CoTile * wRow + (long)ci0 * taps;
                    // The tile's rows of the block, widened (or copied) into L1: one sequential read of each row from
                    // memory, where the kernel's four interleaved row streams measured 30% slower with float32 weights.
                    for (int c = 0; c < count; c++)
                        if (w16 != null) TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(w16 + first + c * wRow, n), new Span<float>(block + c * n, n));
                        else Copy(w + first + c * wRow, block + c * n, n);
                    float* w0 = block, w1 = count > 1 ? w0 + n : w0, w2 = count > 2 ? w0 + 2 * n : w0, w3 = count > 3 ? w0 + 3 * n : w0;
                    float* tile = sums + (long)(cb - ca) * CoTile * posStride;
                    bool accumulate = ci0 > 0;
                    for (int tileIndex = 0; tileIndex < segments * posTiles; tileIndex++)
                    {
                        int seg = tileIndex / posTiles, pt = tileIndex - seg * posTiles;
                        // Tiles as even as the vector count allows (16 vectors: 6 5 5); v0 = vectors before tile pt.
                        int v0 = pt * (vectors / posTiles) + Math.Min(pt, vectors % posTiles);
                        int nv = vectors / posTiles + (pt < vectors % posTiles ? 1 : 0), j0 = v0 * vl;
                        float* xt = xs + (long)seg * segBand + j0, tt = tile + (long)seg * segSums + j0;
                        if (wide)
                            switch (nv)
                            {
                                case 1: Tile512<N1>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                case 2: Tile512<N2>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                case 3: Tile512<N3>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                case 4: Tile512<N4>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                case 5: Tile512<N5>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                default: Tile512<N6>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                            }
                        else
                            switch (nv)
                            {
                                case 1: Tile256<N1>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                case 2: Tile256<N2>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                                default: Tile256<N3>(xt, planeStride, kcb, offsets, taps, w0, w1, w2, w3, 1, tt, posStride, accumulate); break;
                            }
                    }
                }
            }
            for (int cb = ca; cb < cz; cb++)
            {
                int co = cb * CoTile;
                StoreStacked(sums + (long)(cb - ca) * CoTile * posStride, posStride, Math.Min(CoTile, s.Cout - co),
                    bias == null ? null : bias + co, y + (long)co * s.Ho * s.Wo, s, imagePitch);
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="channels"/> rows of stacked sums to the output of every image (output row oy of image n is
    /// band row n slotOut + oy), skipping pad columns and the rows between images, adding the bias.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void StoreStacked(float* tile, int tileStride, int channels, float* bias, float* y, in Shape s, int imagePitch)
    {
        int wo = s.Wo, ho = s.Ho;
        long plane = (long)ho * wo, image = (long)s.Cout * plane;
        for (int ch = 0; ch < channels; ch++)
        {
            float b = bias == null ? 0f : bias[ch];
            for (int n = 0; n < s.Batch; n++)
                for (int oy = 0; oy < ho; oy++)
                    AddBias(tile + (long)ch * tileStride + (long)n * imagePitch + (long)oy * wo, y + n * image + ch * plane + (long)oy * wo, wo, b);
        }
    }

    /// <summary>
    /// Writes, per input channel in [c0, c1), stride x kw copies of the (stacked) padded rows: copy (fy, kx) row q column
    /// ox holds padded row q stride + fy at image column ox stride + kx - pad (zero outside the image), rows Wo apart, then
    /// zeroed slack. Output position j = oy Wo + ox then reads tap (ky, kx) at j + (ky / stride) Wo of copy (ky % stride,
    /// kx): every lane of a vector is an output position, where the shared band's pad columns (8x8: 9 lanes per 8
    /// outputs) left a tenth to a fifth of the lanes idle. The copies cost kw / stride^2 times the input in writes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FillCopies(float* x, float* band, long copyStride, in Shape s, int rowsQ, int slot, int images, int c0, int c1)
    {
        int stride = s.Stride, wo = s.Wo, pad = s.Padding, width = s.W, copies = stride * s.Kw;
        long imageStride = (long)s.Cin * s.H * width;
        for (int ci = c0; ci < c1; ci++)
            for (int fy = 0; fy < stride; fy++)
                for (int kx = 0; kx < s.Kw; kx++)
                {
                    float* dst = band + ((long)ci * copies + fy * s.Kw + kx) * copyStride;
                    // Output columns [lo, hi) read inside the image.
                    int ix0 = kx - pad, lo = Math.Clamp((-ix0 + stride - 1) / stride, 0, wo);
                    int hi = Math.Clamp((width - ix0 + stride - 1) / stride, lo, wo);
                    for (int q = 0; q < rowsQ; q++)
                    {
                        float* row = dst + (long)q * wo, src = SourceRow(x, imageStride, ci, s, q * stride + fy, slot, images);
                        if (src == null) { Clear(row, wo); continue; }
                        for (int i = 0; i < lo; i++) row[i] = 0f;
                        if (stride == 1) Copy(src + ix0 + lo, row + lo, hi - lo);
                        else for (int ox = lo; ox < hi; ox++) row[ox] = src[ox * stride + ix0];
                        for (int i = hi; i < wo; i++) row[i] = 0f;
                    }
                    Clear(dst + (long)rowsQ * wo, (int)(copyStride - (long)rowsQ * wo));
                }
    }

    /// <summary>Channel <paramref name="ci"/>'s image row behind stacked padded row <paramref name="v"/>, or null for a padding row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float* SourceRow(float* x, long imageStride, int ci, in Shape s, int v, int slot, int images)
    {
        int n = v / slot, iy = v - n * slot - s.Padding;
        if (n >= images || iy < 0 || iy >= s.H) return null;
        return x + n * imageStride + ((long)ci * s.H + iy) * s.W;
    }
}
