using SkiaSharp;

namespace Engine.Imaging;

/// <summary>
/// PNG encoding and decoding of <see cref="PixelImage"/> through SkiaSharp. Grayscale images are
/// written as 8-bit grayscale PNGs, RGB images as 8-bit RGB (opaque, no alpha channel).
/// </summary>
public static class PngCodec
{
    /// <summary>Encodes <paramref name="image"/> as PNG bytes.</summary>
    public static byte[] Encode(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        byte[] pixels;
        SKColorType colorType;
        int bytesPerPixel;
        if (image.Channels == 1)
        {
            pixels = image.Pixels;
            colorType = SKColorType.Gray8;
            bytesPerPixel = 1;
        }
        else
        {
            // Skia has no packed 3-byte layout; RGBA with an opaque alpha type is encoded as PNG RGB.
            int count = image.Width * image.Height;
            pixels = new byte[count * 4];
            for (int i = 0; i < count; i++)
            {
                pixels[4 * i] = image.Pixels[3 * i];
                pixels[4 * i + 1] = image.Pixels[3 * i + 1];
                pixels[4 * i + 2] = image.Pixels[3 * i + 2];
                pixels[4 * i + 3] = 255;
            }
            colorType = SKColorType.Rgba8888;
            bytesPerPixel = 4;
        }
        var info = new SKImageInfo(image.Width, image.Height, colorType, SKAlphaType.Opaque);
        unsafe
        {
            fixed (byte* p = pixels)
            {
                using var pixmap = new SKPixmap(info, (nint)p, image.Width * bytesPerPixel);
                using var data = pixmap.Encode(new SKPngEncoderOptions(SKPngEncoderFilterFlags.AllFilters, zLibLevel: 6))
                    ?? throw new InvalidOperationException($"PNG encoding of a {image.Width}x{image.Height}x{image.Channels} image failed.");
                return data.ToArray();
            }
        }
    }

    /// <summary>
    /// Decodes PNG (or any format Skia reads) bytes. Grayscale files give 1 channel, everything else
    /// 3 channels (alpha is dropped). <paramref name="source"/> names the data in error messages.
    /// </summary>
    public static PixelImage Decode(ReadOnlySpan<byte> bytes, string source = "image")
    {
        using var data = SKData.CreateCopy(bytes);
        using var codec = SKCodec.Create(data) ?? throw new InvalidDataException($"{source}: not a readable image.");
        var srcInfo = codec.Info;
        if (srcInfo.Width < 1 || srcInfo.Height < 1) throw new InvalidDataException($"{source}: empty image {srcInfo.Width}x{srcInfo.Height}.");
        bool gray = srcInfo.ColorType == SKColorType.Gray8;
        // Keep the file's colour space so Skia converts nothing: the bytes come back as stored.
        var target = srcInfo.WithColorType(gray ? SKColorType.Gray8 : SKColorType.Rgba8888)
                            .WithAlphaType(gray ? SKAlphaType.Opaque : SKAlphaType.Unpremul);
        int bpp = gray ? 1 : 4;
        var raw = new byte[srcInfo.Width * srcInfo.Height * bpp];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = raw) result = codec.GetPixels(target, (nint)p);
        }
        if (result != SKCodecResult.Success)
            throw new InvalidDataException($"{source}: decoding failed ({result}).");
        if (gray) return new PixelImage(srcInfo.Width, srcInfo.Height, 1, raw);
        int count = srcInfo.Width * srcInfo.Height;
        var rgb = new byte[count * 3];
        for (int i = 0; i < count; i++)
        {
            rgb[3 * i] = raw[4 * i];
            rgb[3 * i + 1] = raw[4 * i + 1];
            rgb[3 * i + 2] = raw[4 * i + 2];
        }
        return new PixelImage(srcInfo.Width, srcInfo.Height, 3, rgb);
    }

    /// <summary>Reads and decodes a PNG file.</summary>
    public static PixelImage Read(string path)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot read image: {e.Message}", e);
        }
        return Decode(bytes, path);
    }

    /// <summary>
    /// Encodes <paramref name="image"/> and writes it to <paramref name="path"/> atomically: the bytes
    /// go to a temporary file in the same folder, which is renamed over the target, so a reader
    /// never sees a half-written PNG and a failure leaves no temporary file behind.
    /// </summary>
    public static void Write(string path, PixelImage image) => AtomicFile.WriteAllBytes(path, Encode(image));
}
