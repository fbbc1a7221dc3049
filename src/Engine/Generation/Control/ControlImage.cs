using Engine.Imaging;

namespace Engine.Generation;

/// <summary>
/// The control image of one ControlNet (diffusers' <c>image</c> / <c>control_image</c> argument): one image for every
/// output or one per output, as values in [0, 1] (never normalised to [-1, 1]), with the file it came from and that
/// file's SHA-256 so a sidecar can name it and check it is the same file when it regenerates the image.
/// </summary>
public sealed record ControlImage
{
    /// <summary>Values [<see cref="Count"/>, <see cref="Channels"/>, <see cref="Height"/>, <see cref="Width"/>] in [0, 1], channels first.</summary>
    public required float[] Pixels { get; init; }

    /// <summary>Number of images (1, or the request's image count).</summary>
    public required int Count { get; init; }

    /// <summary>Channels per image (3 for a PNG; the ControlNet's conditioning_channels must equal it).</summary>
    public int Channels { get; init; } = 3;

    /// <summary>Height as given (before the resize to the output size).</summary>
    public required int Height { get; init; }

    /// <summary>Width as given.</summary>
    public required int Width { get; init; }

    /// <summary>True when the image came from a PNG or 8-bit buffer (resized with Lanczos, as PIL images are); false for float values (nearest, as torch tensors are).</summary>
    public bool FromPng { get; init; }

    /// <summary>The file the image was read from (full path), or null when given from memory.</summary>
    public string? File { get; init; }

    /// <summary>Lower-case hex SHA-256 of <see cref="File"/>'s bytes, or null.</summary>
    public string? Sha256 { get; init; }

    /// <summary>How errors name this image: its file, or "control image N" for one handed over in memory.</summary>
    public string Describe(int index) => File is null ? $"control image {index + 1}" : $"control image '{File}'";

    /// <summary>
    /// Reads a PNG (8-bit RGB or grayscale; values / 255, grayscale repeated on three channels) or a safetensors file
    /// holding tensor <c>image</c> [N, C, H, W] (or [C, H, W]) with values in [0, 1]; errors name <c>--control-image</c>.
    /// </summary>
    public static ControlImage Load(string path)
    {
        string full = Path.GetFullPath(path);
        if (!System.IO.File.Exists(full)) throw new FileNotFoundException($"control image '{full}' (--control-image) does not exist.", full);
        var (bytes, sha, png) = ImageFiles.Read(full);
        var image = png ? FromPixels(PngCodec.Decode(bytes, full)) : ReadTensor(full);
        return image with { File = full, Sha256 = sha };
    }

    /// <summary>An 8-bit image as values in [0, 1] (grayscale repeated on the three channels, as PIL's convert("RGB")).</summary>
    public static ControlImage FromPixels(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        return FromInterleaved(image.Pixels, image.Width, image.Height, image.Channels, image.Width * image.Channels, 1f / 255f, true);
    }

    /// <summary>
    /// One image from interleaved host rows (<paramref name="stride"/> values apart, each pixel <paramref name="channels"/>
    /// values: 1 repeated on three channels, or 3) times <paramref name="factor"/>; 8-bit data resizes as a PNG does.
    /// Throws unless every value lands in [0, 1].
    /// </summary>
    public static ControlImage FromInterleaved<T>(ReadOnlySpan<T> data, int width, int height, int channels, int stride, float factor, bool eightBit)
        where T : unmanaged, System.Numerics.INumberBase<T>
    {
        if (width < 1 || height < 1) throw new ArgumentException($"control image size {width}x{height} must be positive.");
        if (channels is not (1 or 3)) throw new ArgumentException($"control image has {channels} channels per pixel; 1 or 3 are supported.");
        if (stride < width * channels) throw new ArgumentException($"control image stride {stride} is shorter than a row ({width} pixels x {channels} channels).");
        if ((long)stride * (height - 1) + (long)width * channels > data.Length)
            throw new ArgumentException($"control image buffer holds {data.Length} values; {height} rows of stride {stride} need {(long)stride * (height - 1) + (long)width * channels}.");
        int plane = width * height;
        var pixels = new float[3 * plane];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
                for (int c = 0; c < 3; c++)
                {
                    float v = float.CreateTruncating(data[y * stride + x * channels + (channels == 1 ? 0 : c)]) * factor;
                    if (!(v >= 0 && v <= 1)) throw new ArgumentException($"control image value {v} at row {y}, column {x} is outside [0, 1].");
                    pixels[c * plane + y * width + x] = v;
                }
        return new ControlImage { Pixels = pixels, Count = 1, Height = height, Width = width, FromPng = eightBit };
    }

    /// <summary>
    /// The values as diffusers' control image processor prepares them for an output of <paramref name="height"/> x
    /// <paramref name="width"/> pixels: unchanged at that size or with <paramref name="latentChannels"/> channels (taken
    /// as latents), else resized (nearest with source index floor(dst * in / out) for tensors, PIL's Lanczos for PNGs).
    /// </summary>
    public float[] Prepared(int height, int width, int latentChannels)
    {
        if ((Height == height && Width == width) || Channels == latentChannels) return Pixels;
        int planes = Count * Channels;
        if (!FromPng) return ImageResize.Nearest(Pixels, planes, Height, Width, height, width);
        var bytes = Pixels.Select(v => (byte)Math.Clamp((int)MathF.Round(v * 255f), 0, 255)).ToArray();
        return ImageResize.Lanczos(bytes, planes, Height, Width, height, width).Select(b => b / 255f).ToArray();
    }

    private static ControlImage ReadTensor(string path)
    {
        string name = $"control image '{path}' (--control-image)";
        var (values, shape) = ImageFiles.ReadTensor(path, name, name, channels: null);
        return new ControlImage { Pixels = values, Count = shape[0], Channels = shape[1], Height = shape[2], Width = shape[3] };
    }
}
