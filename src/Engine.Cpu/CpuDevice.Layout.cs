using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <summary>Output size from which layout ops write with non-temporal stores: the result will not be in cache for its reader anyway.</summary>
    private const long StreamingBytes = 64L << 20;

    /// <inheritdoc />
    protected override unsafe void UpsampleNearest2xCore(Tensor x, Tensor output)
    {
        int planes = x.Dim(0) * x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        nint px = (nint)(xa.Pointer + xo), po = (nint)(oa.Pointer + oo);
        // Jobs of whole planes, about ChunkSize source elements each (an 8x8 plane alone is too small a job).
        int planesPerJob = Math.Max(1, ChunkSize / Math.Max(1, h * w));
        int jobs = (planes + planesPerJob - 1) / planesPerJob;
        // Outputs far beyond the caches (the VAE's last two upsamplings, 134 and 268 MB) are streamed to memory.
        bool streaming = output.Length * sizeof(float) >= StreamingBytes;
        void Job(int job)
        {
            int p0 = job * planesPerJob, count = Math.Min(planesPerJob, planes - p0);
            LayoutKernels.UpsampleNearest2x((float*)px + (long)p0 * h * w, (float*)po + (long)p0 * 4 * h * w, count, h, w, streaming);
        }
        if (jobs == 1) Job(0);
        else Parallel.For(0, jobs, Parallelism, Job);
    }

    /// <inheritdoc />
    protected override void GatherRowsCore(Tensor table, Tensor indices, Tensor output)
    {
        int rows = table.Dim(0), dim = table.Dim(1);
        var picked = Span(indices);
        var flat = table.Reshape(rows * dim);
        for (int b = 0; b < picked.Length; b++)
        {
            var row = Span(output).Slice(b * dim, dim);
            float index = picked[b];
            // An integer in [0, rows) picks a row (the comparison is false for NaN); anything else gives zeros.
            if (index >= 0 && index < rows && index == MathF.Floor(index)) ConvertToF32(flat.Slice((int)index * dim, dim), row);
            else row.Clear();
        }
    }

    /// <inheritdoc />
    protected override void ConcatChannelsCore(Tensor a, Tensor b, Tensor output)
    {
        int n = a.Dim(0);
        int aBlock = (int)(a.Length / n), bBlock = (int)(b.Length / n);
        var (aa, ao) = Raw(a);
        var (ba, bo) = Raw(b);
        var (oa, oo) = Raw(output);
        // One job per image and operand once a batch is large enough to be worth the dispatch.
        void Part(int job)
        {
            int i = job >> 1, dst = oo + i * (aBlock + bBlock);
            if ((job & 1) == 0) aa.AsSpan(ao + i * aBlock, aBlock).CopyTo(oa.AsSpan(dst, aBlock));
            else ba.AsSpan(bo + i * bBlock, bBlock).CopyTo(oa.AsSpan(dst + aBlock, bBlock));
        }
        if (output.Length < 2 * ChunkSize) for (int job = 0; job < 2 * n; job++) Part(job);
        else Parallel.For(0, 2 * n, Parallelism, Part);
    }

    /// <inheritdoc />
    protected override void SliceChannelsCore(Tensor x, int start, Tensor output)
    {
        int n = x.Dim(0);
        int inner = (int)(output.Length / Math.Max(1, (long)n * output.Dim(1)));
        int srcBlock = x.Dim(1) * inner, dstBlock = output.Dim(1) * inner;
        var sx = Span(x); var so = Span(output);
        for (int i = 0; i < n; i++) sx.Slice(i * srcBlock + start * inner, dstBlock).CopyTo(so.Slice(i * dstBlock, dstBlock));
    }

    /// <inheritdoc />
    protected override void CopyWindowCore(Tensor x, int srcY, int srcX, Tensor output, int dstY, int dstX, int height, int width)
    {
        int planes = x.Dim(0) * x.Dim(1), sh = x.Dim(2), sw = x.Dim(3), dh = output.Dim(2), dw = output.Dim(3);
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < height; y++)
                xa.AsSpan(xo + ((long)p * sh + srcY + y) * sw + srcX, width).CopyTo(oa.AsSpan(oo + ((long)p * dh + dstY + y) * dw + dstX, width));
    }

    /// <inheritdoc />
    protected override unsafe void TransposeCore(Tensor x, Tensor output)
    {
        int batch = x.Dim(0), m = x.Dim(1), n = x.Dim(2);
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        nint px = (nint)(xa.Pointer + xo), po = (nint)(oa.Pointer + oo);
        // One job per strip of source rows: it reads the strip once and writes a contiguous run of each output row.
        const int Strip = LayoutKernels.TransposeStrip;
        int strips = (m + Strip - 1) / Strip;
        void Job(int job)
        {
            int bi = job / strips, r0 = (job % strips) * Strip;
            long plane = (long)bi * m * n;
            LayoutKernels.TransposeRows((float*)px + plane, (float*)po + plane, m, n, r0, Math.Min(m, r0 + Strip));
        }
        if ((long)batch * m * n < ChunkSize) for (int job = 0; job < batch * strips; job++) Job(job);
        else Parallel.For(0, batch * strips, Parallelism, Job);
    }

    /// <inheritdoc />
    protected override void PatchifyCore(Tensor image, Tensor tokens, int patch, bool unpatchify)
    {
        int n = image.Dim(0), c = image.Dim(1), h = image.Dim(2), w = image.Dim(3);
        int gh = h / patch, gw = w / patch, width = patch * patch * c;
        var (ia, io) = Raw(image);
        var (ta, to) = Raw(tokens);
        Parallel.For(0, n * gh * gw, Parallelism, token =>
        {
            int gx = token % gw, gy = (token / gw) % gh, ni = token / (gw * gh);
            for (int py = 0; py < patch; py++)
                for (int px = 0; px < patch; px++)
                    for (int ci = 0; ci < c; ci++)
                    {
                        int t = to + token * width + (py * patch + px) * c + ci;
                        int im = io + ((ni * c + ci) * h + gy * patch + py) * w + gx * patch + px;
                        if (unpatchify) ia[im] = ta[t]; else ta[t] = ia[im];
                    }
        });
    }
}
