using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="LayoutKernels.Patchify"/>.</summary>
public struct PatchParams
{
    /// <summary>Image channels, height, width.</summary>
    public int C, H, W;
    /// <summary>Patch edge.</summary>
    public int Patch;
    /// <summary>1 to scatter tokens back into the image.</summary>
    public int Unpatchify;
}

/// <summary>Scalar arguments of <see cref="LayoutKernels.CopyWindow"/>: both planes' sizes, the window's corners and size.</summary>
public struct WindowParams
{
    /// <summary>Source and destination plane sizes.</summary>
    public int SrcH, SrcW, DstH, DstW;
    /// <summary>Window corners in the source and the destination.</summary>
    public int SrcY, SrcX, DstY, DstX;
    /// <summary>Window size.</summary>
    public int Height, Width;
}

/// <summary>
/// Data-movement kernels (upsampling, channel concat and slice, transpose, patchify). All use the
/// implicit (auto-grouped) launch: one thread per output element, group size chosen by ILGPU.
/// </summary>
public static class LayoutKernels
{
    /// <summary>Nearest 2x upsampling: index over o [P, 2H, 2W], o = x[p, y/2, x/2].</summary>
    public static void UpsampleNearest2x(Index1D i, ArrayView<float> x, ArrayView<float> o, int h, int w) => UpsampleNearest2xOf(i, x, o, h, w);

    /// <summary><see cref="UpsampleNearest2x"/> for any element type (f16 and bf16 tensors move as their 16 bits).</summary>
    public static void UpsampleNearest2xOf<T>(Index1D i, ArrayView<T> x, ArrayView<T> o, int h, int w) where T : unmanaged
    {
        int w2 = 2 * w, h2 = 2 * h;
        int ox = i % w2, oy = (i / w2) % h2, plane = i / (w2 * h2);
        o[i] = x[((long)plane * h + oy / 2) * w + ox / 2];
    }

    /// <summary>
    /// Embedding lookup: index over o [B, dim], o[b, j] = table[indices[b], j], zero where indices[b] is not an integer
    /// in [0, rows). Table and output on any storage (each value widened exactly, rounded once to the output's).
    /// </summary>
    public static void GatherRows<TW, TO>(Index1D i, TW table, ArrayView<float> indices, TO o, int rows, int dim)
        where TW : struct, IWeightView where TO : struct, IOutputView
    {
        int b = i / dim, j = i - b * dim;
        float index = indices[b];
        bool valid = index >= 0f && index < rows && index == MathF.Floor(index);
        o.Write(i, valid ? table.Read((long)(int)index * dim + j) : 0f);
    }

    /// <summary>Channel concat: index over o [N, aBlock + bBlock]; copies from a or b.</summary>
    public static void ConcatChannels(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, int aBlock, int bBlock) =>
        ConcatChannelsOf(i, a, b, o, aBlock, bBlock);

    /// <summary><see cref="ConcatChannels"/> for any element type (f16 and bf16 tensors move as their 16 bits).</summary>
    public static void ConcatChannelsOf<T>(Index1D i, ArrayView<T> a, ArrayView<T> b, ArrayView<T> o, int aBlock, int bBlock) where T : unmanaged
    {
        int block = aBlock + bBlock, n = i / block, j = i - n * block;
        o[i] = j < aBlock ? a[(long)n * aBlock + j] : b[(long)n * bBlock + j - aBlock];
    }

    /// <summary>Channel slice: index over o [N, dstBlock]; o[n, j] = x[n, offset + j] with x rows of srcBlock.</summary>
    public static void SliceChannels(Index1D i, ArrayView<float> x, ArrayView<float> o, int srcBlock, int dstBlock, int offset) =>
        SliceChannelsOf(i, x, o, srcBlock, dstBlock, offset);

    /// <summary><see cref="SliceChannels"/> for any element type.</summary>
    public static void SliceChannelsOf<T>(Index1D i, ArrayView<T> x, ArrayView<T> o, int srcBlock, int dstBlock, int offset) where T : unmanaged
    {
        int n = i / dstBlock, j = i - n * dstBlock;
        o[i] = x[(long)n * srcBlock + offset + j];
    }

    /// <summary>Window copy: index over [planes, Height, Width] of the window; writes only inside it.</summary>
    public static void CopyWindow(Index1D i, ArrayView<float> x, ArrayView<float> o, WindowParams p) => CopyWindowOf(i, x, o, p);

    /// <summary><see cref="CopyWindow"/> for any element type.</summary>
    public static void CopyWindowOf<T>(Index1D i, ArrayView<T> x, ArrayView<T> o, WindowParams p) where T : unmanaged
    {
        int xx = i % p.Width, y = (i / p.Width) % p.Height, plane = i / (p.Width * p.Height);
        o[((long)plane * p.DstH + p.DstY + y) * p.DstW + p.DstX + xx] = x[((long)plane * p.SrcH + p.SrcY + y) * p.SrcW + p.SrcX + xx];
    }

    /// <summary>Batched transpose: index over o [B, N, M], o[b, j, r] = x[b, r, j].</summary>
    public static void Transpose(Index1D i, ArrayView<float> x, ArrayView<float> o, int m, int n) => TransposeOf(i, x, o, m, n);

    /// <summary><see cref="Transpose"/> for any element type (f16 and bf16 tensors move as their 16 bits).</summary>
    public static void TransposeOf<T>(Index1D i, ArrayView<T> x, ArrayView<T> o, int m, int n) where T : unmanaged
    {
        int r = i % m, j = (i / m) % n, b = i / (m * n);
        o[i] = x[((long)b * m + r) * n + j];
    }

    /// <summary>
    /// DiT (un)patchify: index over tokens [N, gh*gw, p*p*C] with token layout (py, px, c); copies
    /// between the token element and image[n, c, gy*p + py, gx*p + px].
    /// </summary>
    public static void Patchify(Index1D i, ArrayView<float> image, ArrayView<float> tokens, PatchParams p) => PatchifyOf(i, image, tokens, p);

    /// <summary><see cref="Patchify"/> for any element type.</summary>
    public static void PatchifyOf<T>(Index1D i, ArrayView<T> image, ArrayView<T> tokens, PatchParams p) where T : unmanaged
    {
        int width = p.Patch * p.Patch * p.C, gw = p.W / p.Patch, gh = p.H / p.Patch;
        int e = i % width, token = i / width;
        int ci = e % p.C, px = (e / p.C) % p.Patch, py = e / (p.C * p.Patch);
        int gx = token % gw, gy = (token / gw) % gh, n = token / (gw * gh);
        long im = (((long)n * p.C + ci) * p.H + gy * p.Patch + py) * p.W + gx * p.Patch + px;
        if (p.Unpatchify != 0) image[im] = tokens[i]; else tokens[i] = image[im];
    }
}
