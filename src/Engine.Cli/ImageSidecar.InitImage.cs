using Engine.Generation;
using Engine.Generation.Pipelines;

namespace Engine.Cli;

/// <summary>The sidecar's img2img and VAE fields: the init image (path and SHA-256), its strength, the VAE tiling.</summary>
public sealed partial record ImageSidecar
{
    /// <summary>Full path of the img2img init image, or null for text-to-image.</summary>
    public string? InitImage { get; init; }

    /// <summary>Lower-case hex SHA-256 of <see cref="InitImage"/>'s bytes when the image was made; regeneration refuses another file.</summary>
    public string? InitImageSha256 { get; init; }

    /// <summary>img2img strength, with <see cref="InitImage"/>.</summary>
    public double? Strength { get; init; }

    /// <summary>
    /// VAE tiling of a pipeline's image (<c>auto</c>, <c>on</c> or <c>off</c>); null for other models. A pipeline
    /// sidecar without it was made before tiling existed and reads as <c>off</c>, the pixels it was made with.
    /// </summary>
    public string? VaeTiling { get; init; }

    private static string? TilingName(VaeTiling tiling, bool decoded) => !decoded ? null : tiling.ToString().ToLowerInvariant();

    /// <summary>
    /// <paramref name="request"/> with the recorded init image read again, checked against its SHA-256, and cut to
    /// the request's first <see cref="GenerationRequest.Count"/> images when it holds one per image.
    /// </summary>
    private GenerationRequest WithImageToImage(GenerationRequest request, string path)
    {
        var tiling = VaeTiling switch
        {
            null => Generation.Pipelines.VaeTiling.Off,
            "auto" => Generation.Pipelines.VaeTiling.Auto,
            "on" => Generation.Pipelines.VaeTiling.On,
            "off" => Generation.Pipelines.VaeTiling.Off,
            _ => throw new InvalidDataException($"{path}: vae_tiling '{VaeTiling}' must be auto, on or off."),
        };
        request = request with { VaeTiling = tiling };
        if (InitImage is null)
        {
            if (Strength is not null) throw new InvalidDataException($"{path}: strength is recorded without init_image.");
            return request;
        }
        if (!System.IO.File.Exists(InitImage)) throw new FileNotFoundException($"{path}: init image '{InitImage}' does not exist.", InitImage);
        Engine.Generation.InitImage image;
        try { image = Engine.Generation.InitImage.Load(InitImage, Strength ?? Engine.Generation.InitImage.DefaultStrength); }
        catch (ArgumentException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        if (InitImageSha256 is { } sha && !string.Equals(sha, image.Sha256, StringComparison.OrdinalIgnoreCase))
            throw new InvalidDataException($"{path}: init image '{InitImage}' has changed since the image was made (SHA-256 {image.Sha256}, recorded {sha}).");
        if (image.Count > 1 && image.Count != RequestCount)
            throw new InvalidDataException($"{path}: init image '{InitImage}' holds {image.Count} images for a request of {RequestCount}.");
        if (image.Count > request.Count)
        {
            int length = 3 * image.Height * image.Width;
            image = image with { Count = request.Count, Pixels = image.Pixels[..(request.Count * length)] };
        }
        return request with { InitImage = image };
    }
}
