using Engine.Core;

namespace Engine.Models.Networks;

/// <summary>
/// The inputs of one ControlNet forward pass, named as diffusers' <c>ControlNetModel.forward</c> arguments. All are
/// float32 device tensors.
/// </summary>
/// <param name="Sample">Noisy latents [B, in_channels, h, w].</param>
/// <param name="Timestep">Timesteps [B] (or [1], broadcast).</param>
/// <param name="EncoderHiddenStates">Text conditioning [B, L, cross_attention_dim].</param>
/// <param name="ControlImage">The control image [B, conditioning_channels, h * f, w * f] at pixel resolution, in [0, 1].</param>
public sealed record ControlNetInputs(Tensor Sample, Tensor Timestep, Tensor EncoderHiddenStates, Tensor ControlImage)
{
    /// <summary>SDXL's added conditioning [B, text_embeds + 6]: the pooled text embedding, then the six time ids.</summary>
    public Tensor? Added { get; init; }

    /// <summary>controlnet_conditioning_scale: the factor on every residual.</summary>
    public float Scale { get; init; } = 1f;

    /// <summary>Guess mode: residual j scaled by logspace(-1, 0, n + 1)[j] * <see cref="Scale"/>, the mid residual by the last entry.</summary>
    public bool GuessMode { get; init; }
}
