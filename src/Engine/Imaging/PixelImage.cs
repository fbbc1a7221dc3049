namespace Engine.Imaging;

/// <summary>
/// An 8-bit image on the host: <see cref="Channels"/> is 1 (grayscale) or 3 (RGB), pixels row-major
/// with channels interleaved (length Width * Height * Channels).
/// </summary>
public sealed class PixelImage
{
    /// <summary>Wraps <paramref name="pixels"/> (not copied) after checking its length.</summary>
    public PixelImage(int width, int height, int channels, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (width < 1 || height < 1) throw new ArgumentException($"Image size {width}x{height} must be positive.");
        if (channels != 1 && channels != 3) throw new ArgumentException($"Image has {channels} channels; 1 (grayscale) or 3 (RGB) are supported.");
        if (pixels.LongLength != (long)width * height * channels)
            throw new ArgumentException($"Image {width}x{height}x{channels} needs {(long)width * height * channels} bytes; got {pixels.LongLength}.");
        Width = width; Height = height; Channels = channels; Pixels = pixels;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>1 for grayscale, 3 for RGB.</summary>
    public int Channels { get; }

    /// <summary>Row-major, channel-interleaved 8-bit values.</summary>
    public byte[] Pixels { get; }
}
