using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override void UpsampleNearest2xCore(Tensor x, Tensor output)
    {
        int planes = x.Dim(0) * x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        // Each source row is widened once into the even output row, which is then copied to the odd one.
        Parallel.For(0, planes, Parallelism, p =>
        {
            for (int y = 0; y < h; y++)
            {
                int src = xo + (p * h + y) * w, dst = oo + (p * 2 * h + 2 * y) * 2 * w;
                for (int xx = 0; xx < w; xx++) { float v = xa[src + xx]; oa[dst + 2 * xx] = v; oa[dst + 2 * xx + 1] = v; }
                oa.AsSpan(dst, 2 * w).CopyTo(oa.AsSpan(dst + 2 * w, 2 * w));
            }
        });
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
    protected override void TransposeCore(Tensor x, Tensor output)
    {
        int batch = x.Dim(0), m = x.Dim(1), n = x.Dim(2);
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        const int Tile = 32;
        int tilesM = (m + Tile - 1) / Tile, tilesN = (n + Tile - 1) / Tile;
        Parallel.For(0, batch * tilesM * tilesN, Parallelism, job =>
        {
            int tn = job % tilesN, tm = (job / tilesN) % tilesM, bi = job / (tilesN * tilesM);
            int baseIdx = bi * m * n;
            for (int i = tm * Tile; i < Math.Min(m, (tm + 1) * Tile); i++)
                for (int j = tn * Tile; j < Math.Min(n, (tn + 1) * Tile); j++)
                    oa[oo + baseIdx + j * m + i] = xa[xo + baseIdx + i * n + j];
        });
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
