namespace Engine.Generation;

/// <summary>
/// One ControlNet of a request (diffusers' <c>controlnet</c> with its <c>controlnet_conditioning_scale</c>,
/// <c>control_guidance_start</c> / <c>control_guidance_end</c> and its image). The net runs at the model calls i of N
/// with i / N &gt;= <see cref="Start"/> and (i + 1) / N &lt;= <see cref="End"/>, N the calls the run makes.
/// </summary>
/// <param name="Path">The ControlNetModel folder (config.json + diffusion_pytorch_model.safetensors).</param>
/// <param name="Image">Its control image.</param>
public sealed record ControlNetSpec(string Path, ControlImage Image)
{
    /// <summary>The factor on every residual (controlnet_conditioning_scale).</summary>
    public double Scale { get; init; } = 1;

    /// <summary>Fraction of the calls before which the net is skipped (control_guidance_start).</summary>
    public double Start { get; init; }

    /// <summary>Fraction of the calls after which the net is skipped (control_guidance_end).</summary>
    public double End { get; init; } = 1;

    /// <summary>Whether the net runs at call <paramref name="call"/> of <paramref name="calls"/> (diffusers' controlnet_keep).</summary>
    public bool Keeps(int call, int calls) => !((double)call / calls < Start || (double)(call + 1) / calls > End);
}
