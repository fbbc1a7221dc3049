namespace Engine.Imaging;

/// <summary>
/// The two resizes diffusers' <c>VaeImageProcessor</c> applies to an init image of another size: torch's
/// <c>F.interpolate</c> default (nearest) for tensors, and PIL's Lanczos for PIL images, here with PIL's
/// 8-bit fixed-point arithmetic (horizontal pass, then vertical, each rounded to 8 bits) so PNG inputs
/// resize to PIL's bytes.
/// </summary>
public static class ImageResize
{
    /// <summary>
    /// Nearest resize of planes [planes, h, w] to [planes, outH, outW] as torch's <c>F.interpolate(mode="nearest")</c>:
    /// source index <c>min(floor(dst * (float)in / out), in - 1)</c>.
    /// </summary>
    public static float[] Nearest(ReadOnlySpan<float> src, int planes, int h, int w, int outH, int outW)
    {
        CheckSizes(src.Length, planes, h, w, outH, outW);
        var rows = NearestIndex(h, outH);
        var cols = NearestIndex(w, outW);
        var dst = new float[(long)planes * outH * outW];
        for (int p = 0; p < planes; p++)
            for (int y = 0; y < outH; y++)
                for (int x = 0; x < outW; x++)
                    dst[((long)p * outH + y) * outW + x] = src[(p * h + rows[y]) * w + cols[x]];
        return dst;
    }

    private static int[] NearestIndex(int input, int output)
    {
        float scale = (float)input / output;
        return Enumerable.Range(0, output).Select(o => input == output ? o : Math.Min((int)MathF.Floor(o * scale), input - 1)).ToArray();
    }

    /// <summary>
    /// PIL's <c>Image.resize(..., Image.LANCZOS)</c> of 8-bit planes [planes, h, w] (each channel resized alone,
    /// as PIL does for RGB): Lanczos-3 widened by the downscale factor, coefficients normalised and held in
    /// 22-bit fixed point, the horizontal pass first, each pass rounded and clipped to 8 bits.
    /// </summary>
    public static byte[] Lanczos(ReadOnlySpan<byte> src, int planes, int h, int w, int outH, int outW)
    {
        CheckSizes(src.Length, planes, h, w, outH, outW);
        byte[] current = src.ToArray();
        if (outW != w)
        {
            var (bounds, coeffs, k) = Coefficients(w, outW);
            var next = new byte[planes * h * outW];
            for (int row = 0; row < planes * h; row++)
                for (int x = 0; x < outW; x++)
                {
                    int start = bounds[2 * x], size = bounds[2 * x + 1];
                    long ss = 1L << (PrecisionBits - 1);
                    for (int t = 0; t < size; t++) ss += current[row * w + start + t] * (long)coeffs[x * k + t];
                    next[row * outW + x] = Clip8(ss);
                }
            current = next;
            w = outW;
        }
        if (outH != h)
        {
            var (bounds, coeffs, k) = Coefficients(h, outH);
            var next = new byte[planes * outH * w];
            for (int p = 0; p < planes; p++)
                for (int y = 0; y < outH; y++)
                {
                    int start = bounds[2 * y], size = bounds[2 * y + 1];
                    for (int x = 0; x < w; x++)
                    {
                        long ss = 1L << (PrecisionBits - 1);
                        for (int t = 0; t < size; t++) ss += current[(p * h + start + t) * w + x] * (long)coeffs[y * k + t];
                        next[(p * outH + y) * w + x] = Clip8(ss);
                    }
                }
            current = next;
        }
        return current;
    }

    private const int PrecisionBits = 32 - 8 - 2;

    private static byte Clip8(long v) => v >= (1L << PrecisionBits << 8) ? (byte)255 : v <= 0 ? (byte)0 : (byte)(v >> PrecisionBits);

    private static double Sinc(double x) => x == 0 ? 1 : Math.Sin(Math.PI * x) / (Math.PI * x);

    private static double LanczosFilter(double x) => x >= -3 && x < 3 ? Sinc(x) * Sinc(x / 3) : 0;

    /// <summary>PIL's precompute_coeffs for Lanczos (support 3) and normalize_coeffs_8bpc: per output (start, size) and fixed-point weights.</summary>
    private static (int[] Bounds, int[] Coeffs, int K) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize, filterScale = Math.Max(scale, 1.0);
        double support = 3 * filterScale;
        int k = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[2 * outSize];
        var coeffs = new int[outSize * k];
        var weights = new double[k];
        for (int x = 0; x < outSize; x++)
        {
            double center = (x + 0.5) * scale, total = 0, ss = 1.0 / filterScale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int max = Math.Min((int)(center + support + 0.5), inSize) - min;
            for (int t = 0; t < max; t++) { weights[t] = LanczosFilter((t + min - center + 0.5) * ss); total += weights[t]; }
            for (int t = 0; t < max; t++)
            {
                double v = total != 0 ? weights[t] / total : weights[t];
                coeffs[x * k + t] = (int)(v * (1 << PrecisionBits) + (v < 0 ? -0.5 : 0.5));
            }
            bounds[2 * x] = min;
            bounds[2 * x + 1] = max;
        }
        return (bounds, coeffs, k);
    }

    private static void CheckSizes(int length, int planes, int h, int w, int outH, int outW)
    {
        if (planes < 1 || h < 1 || w < 1 || outH < 1 || outW < 1 || length != (long)planes * h * w)
            throw new ArgumentException($"ImageResize: {length} values are not {planes} planes of {h}x{w}, or the size {outH}x{outW} is empty.");
    }
}
