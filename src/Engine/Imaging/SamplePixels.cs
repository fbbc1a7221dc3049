namespace Engine.Imaging;

/// <summary>
/// Converts model-space samples (float32, nominally in [-1, 1]) to 8-bit pixels the way diffusers'
/// image post-processing does: v = clamp(x / 2 + 0.5, 0, 1), pixel = round(v * 255) with
/// round-half-to-even (numpy), all in float32.
/// </summary>
public static class SamplePixels
{
    /// <summary>The 8-bit value of one sample element.</summary>
    public static byte ToByte(float x)
    {
        float v = x / 2f + 0.5f;
        // NaN fails both comparisons; map it to 0 like a clamp to the lower bound.
        if (!(v > 0f)) v = 0f;
        else if (v > 1f) v = 1f;
        return (byte)MathF.Round(v * 255f, MidpointRounding.ToEven);
    }

    /// <summary>The 8-bit value of a [0, 1] value (clamped; NaN maps to 0), rounded as <see cref="ToByte"/> rounds.</summary>
    public static byte UnitToByte(float v)
    {
        if (!(v > 0f)) v = 0f;
        else if (v > 1f) v = 1f;
        return (byte)MathF.Round(v * 255f, MidpointRounding.ToEven);
    }

    /// <summary>The model-space value a pixel stands for: p / 127.5 - 1.</summary>
    public static float ToSample(byte pixel) => pixel / 127.5f - 1f;

    /// <summary>
    /// Splits samples [N, C, H, W] (host floats, NCHW) into N images with interleaved channels.
    /// C must be 1 (grayscale) or 3 (RGB).
    /// </summary>
    public static PixelImage[] ToImages(ReadOnlySpan<float> samples, ReadOnlySpan<int> shape) => ToImages(samples, shape, false);

    /// <summary>
    /// As <see cref="ToImages(ReadOnlySpan{float}, ReadOnlySpan{int})"/>, with <paramref name="unitRange"/>
    /// true for images already in [0, 1] (a VAE decode after diffusers' clamp(x / 2 + 0.5, 0, 1)).
    /// </summary>
    public static PixelImage[] ToImages(ReadOnlySpan<float> samples, ReadOnlySpan<int> shape, bool unitRange)
    {
        if (shape.Length != 4) throw new ArgumentException($"Samples must be [N, C, H, W]; got shape [{string.Join(", ", shape.ToArray())}].", nameof(shape));
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3];
        if (n < 0 || h < 1 || w < 1) throw new ArgumentException($"Samples shape [{n}, {c}, {h}, {w}] has an empty image size.", nameof(shape));
        if (c != 1 && c != 3) throw new ArgumentException($"Samples have {c} channels; images need 1 (grayscale) or 3 (RGB).", nameof(shape));
        long expected = (long)n * c * h * w;
        if (samples.Length != expected) throw new ArgumentException($"Samples hold {samples.Length} values; shape [{n}, {c}, {h}, {w}] needs {expected}.", nameof(samples));
        var images = new PixelImage[n];
        int plane = h * w;
        for (int i = 0; i < n; i++)
        {
            var pixels = new byte[plane * c];
            var src = samples.Slice(i * c * plane, c * plane);
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++)
                    pixels[p * c + ch] = unitRange ? UnitToByte(src[ch * plane + p]) : ToByte(src[ch * plane + p]);
            images[i] = new PixelImage(w, h, c, pixels);
        }
        return images;
    }

    /// <summary>
    /// The classifier input for images: pixels back to model space, [N, C, H, W] NCHW floats, so a
    /// quality metric sees exactly what a saved PNG holds.
    /// </summary>
    public static float[] ToSamples(IReadOnlyList<PixelImage> images)
    {
        if (images.Count == 0) return [];
        var first = images[0];
        int plane = first.Width * first.Height, c = first.Channels;
        var result = new float[images.Count * plane * c];
        for (int i = 0; i < images.Count; i++)
        {
            var img = images[i];
            if (img.Width != first.Width || img.Height != first.Height || img.Channels != c)
                throw new ArgumentException($"Image {i} is {img.Width}x{img.Height}x{img.Channels}; image 0 is {first.Width}x{first.Height}x{c}.", nameof(images));
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < plane; p++)
                    result[(i * c + ch) * plane + p] = ToSample(img.Pixels[p * c + ch]);
        }
        return result;
    }
}
