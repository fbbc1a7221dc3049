using Engine.Core;
using Engine.Models.Networks;

namespace Engine.Generation.Pipelines;

/// <summary>
/// The parts of a latent pipeline folder besides the denoiser: its prompt encoder (none for the
/// class-conditional DiTPipeline) and its VAE.
/// Held by a <see cref="LoadedDenoiser"/> loaded from a pipeline folder; disposed with it.
/// </summary>
public sealed class LatentPipeline : IDisposable
{
    internal LatentPipeline(PipelineIndex index, PromptEncoder? prompts, AutoencoderKL vae, bool micro)
    {
        UsesMicroConditioning = micro;
        // diffusers' default for StableDiffusionXLPipeline.
        ZerosForEmptyNegative = micro && index.Flag("force_zeros_for_empty_prompt", true);
        Index = index;
        Prompts = prompts;
        Vae = vae;
    }

    /// <summary>The folder's model_index.json.</summary>
    public PipelineIndex Index { get; }

    /// <summary>
    /// Whether the UNet takes SDXL's added conditioning (pooled text embedding and add_time_ids from the
    /// original size, crop top-left and target size).
    /// </summary>
    public bool UsesMicroConditioning { get; }

    /// <summary>Whether, with guidance and no negative prompt, the negative embeddings are zeros (<c>force_zeros_for_empty_prompt</c>).</summary>
    public bool ZerosForEmptyNegative { get; }

    /// <summary>Tokenizers and text encoders; null for a class-conditional pipeline (DiT).</summary>
    public PromptEncoder? Prompts { get; }

    /// <summary>The VAE that decodes the final latents.</summary>
    public AutoencoderKL Vae { get; }

    /// <summary>Pixels per latent along each side (the VAE's downscale factor).</summary>
    public int LatentScale => Vae.DownscaleFactor;

    /// <summary>
    /// Decodes latents [N, C, h, w] as diffusers does before <c>output_type="np"</c>: the VAE decoder on
    /// <c>latents / scaling_factor + shift_factor</c>, then <c>clamp(x / 2 + 0.5, 0, 1)</c>. Returns the
    /// host image [N, 3, h f, w f]; the latents stay on the device until the decoded image is downloaded.
    /// <paramref name="tiling"/> decodes in overlapping tiles (<see cref="TiledVae"/>).
    /// </summary>
    public float[] Decode(Tensor latents, VaeTiling tiling = VaeTiling.Off)
    {
        var device = latents.Device;
        using var scaled = device.Allocate(latents.ShapeArray());
        device.Affine(latents, scaled, 1f / Vae.ScalingFactor, Vae.ShiftFactor ?? 0f);
        using var decoded = Tiles(tiling, latents.Dim(2) * LatentScale, latents.Dim(3) * LatentScale) ? TiledVae.Decode(Vae, scaled) : Vae.Decode(scaled);
        var image = new float[decoded.Length];
        device.Download(decoded, image);
        for (int i = 0; i < image.Length; i++)
        {
            float v = image[i] / 2f + 0.5f;
            image[i] = v > 1f ? 1f : v > 0f ? v : 0f;
        }
        return image;
    }

    /// <summary>Image area (pixels) above which <see cref="VaeTiling.Auto"/> tiles: 1024 x 1024, where each
    /// full-resolution activation of an untiled SD VAE decode (128 channels) takes 512 MiB.</summary>
    public const long AutoTilingPixels = 1024L * 1024;

    /// <summary>The VAE posterior of images [N, 3, H, W] in [-1, 1] (in tiles per <paramref name="tiling"/>).</summary>
    public AutoencoderKL.LatentDistribution Encode(Tensor pixels, VaeTiling tiling = VaeTiling.Off) =>
        Tiles(tiling, pixels.Dim(2), pixels.Dim(3)) ? TiledVae.Encode(Vae, pixels) : Vae.Encode(pixels);

    /// <summary>Whether an image of <paramref name="height"/> x <paramref name="width"/> pixels is worked on in tiles.</summary>
    public bool Tiles(VaeTiling tiling, int height, int width) => TiledVae.Tileable(Vae) && tiling switch
    {
        VaeTiling.On => height > TiledVae.SampleTile(Vae) || width > TiledVae.SampleTile(Vae),
        VaeTiling.Auto => (long)height * width > AutoTilingPixels && (height > TiledVae.SampleTile(Vae) || width > TiledVae.SampleTile(Vae)),
        _ => false,
    };

    /// <summary>Frees the text encoder and the VAE.</summary>
    public void Dispose()
    {
        Prompts?.Dispose();
        Vae.Dispose();
    }
}
