namespace Engine.Generation.Pipelines;

/// <summary>
/// When a pipeline's VAE works in overlapping tiles (diffusers' <c>enable_vae_tiling</c>), which bounds the
/// memory of decoding and encoding large images at the cost of seams blended over a quarter of a tile.
/// </summary>
public enum VaeTiling
{
    /// <summary>Tiles when the image is larger than <see cref="LatentPipeline.AutoTilingPixels"/> pixels (the default).</summary>
    Auto,

    /// <summary>Always tiles an image larger than one tile (as diffusers with tiling enabled).</summary>
    On,

    /// <summary>Never tiles (diffusers' default).</summary>
    Off,
}
