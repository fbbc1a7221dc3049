using Engine.Imaging;

namespace Engine.Generation;

/// <summary>
/// The image an img2img request starts from (diffusers' <c>StableDiffusionImg2ImgPipeline</c> /
/// <c>StableDiffusionXLImg2ImgPipeline</c> <c>image</c> and <c>strength</c>): one image for every output or one
/// per output, as pixels in [0, 1], with the file it came from and that file's SHA-256 so a sidecar can
/// name it and check it is the same file when it regenerates the image.
/// </summary>
public sealed record InitImage
{
    /// <summary>diffusers' default strength of StableDiffusionImg2ImgPipeline.</summary>
    public const double DefaultStrength = 0.8;

    /// <summary>Pixels [<see cref="Count"/>, 3, <see cref="Height"/>, <see cref="Width"/>] in [0, 1], channels first.</summary>
    public required float[] Pixels { get; init; }

    /// <summary>Number of images (1, or the request's image count).</summary>
    public required int Count { get; init; }

    /// <summary>Height in pixels as read (before any resize to the output size).</summary>
    public required int Height { get; init; }

    /// <summary>Width in pixels as read.</summary>
    public required int Width { get; init; }

    /// <summary>
    /// How far the image is noised, in (0, 1]: the run starts at inference step
    /// <c>steps - int(steps * strength)</c> (diffusers' <c>get_timesteps</c>); 1 starts from pure noise.
    /// </summary>
    public double Strength { get; init; } = DefaultStrength;

    /// <summary>True when the image came from a PNG (resized with Lanczos, as PIL images are); false for a tensor (nearest, as torch tensors are).</summary>
    public bool FromPng { get; init; }

    /// <summary>The file the image was read from (full path), or null when given as pixels.</summary>
    public string? File { get; init; }

    /// <summary>Lower-case hex SHA-256 of <see cref="File"/>'s bytes, or null.</summary>
    public string? Sha256 { get; init; }

    /// <summary>
    /// Optional standard-normal draw of the VAE posterior sample ([Count, latent channels, h, w], diffusers'
    /// <c>latent_dist.sample()</c> noise), to reproduce a run made elsewhere; null draws it from the request's seed.
    /// </summary>
    public float[]? EncodeNoise { get; init; }

    /// <summary>Checks <paramref name="strength"/> is in (0, 1]; the message names <c>--strength</c>.</summary>
    public static void CheckStrength(double strength)
    {
        if (!(strength > 0 && strength <= 1)) throw new ArgumentException($"strength {strength} (--strength) must be in (0, 1].");
    }

    /// <summary>
    /// Reads a PNG (8-bit RGB or grayscale; values / 255) or a safetensors file holding tensor <c>image</c>
    /// [N, 3, H, W] (or [3, H, W]) with values in [0, 1], and records its path and SHA-256.
    /// </summary>
    public static InitImage Load(string path, double strength = DefaultStrength)
    {
        CheckStrength(strength);
        string full = Path.GetFullPath(path);
        if (Directory.Exists(full)) throw new FileNotFoundException($"init image '{full}' (--init-image) is a folder; expected a PNG or safetensors file.", full);
        if (!System.IO.File.Exists(full)) throw new FileNotFoundException($"init image '{full}' (--init-image) does not exist.", full);
        var (bytes, sha, png) = ImageFiles.Read(full);
        var image = png ? FromPixels(PngCodec.Decode(bytes, full)) : ReadTensor(full);
        return image with { Strength = strength, File = full, Sha256 = sha, FromPng = png };
    }

    /// <summary>An 8-bit image as pixels in [0, 1] (grayscale repeated on the three channels, as PIL's convert("RGB")).</summary>
    public static InitImage FromPixels(PixelImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        int plane = image.Width * image.Height;
        var pixels = new float[3 * plane];
        for (int p = 0; p < plane; p++)
            for (int c = 0; c < 3; c++)
                pixels[c * plane + p] = image.Pixels[p * image.Channels + (image.Channels == 1 ? 0 : c)] / 255f;
        return new InitImage { Pixels = pixels, Count = 1, Height = image.Height, Width = image.Width, FromPng = true };
    }

    private static InitImage ReadTensor(string path)
    {
        var (values, shape) = ImageFiles.ReadTensor(path, $"init image '{path}' (--init-image)", $"init image '{path}'", channels: 3);
        return new InitImage { Pixels = values, Count = shape[0], Height = shape[2], Width = shape[3] };
    }
}
