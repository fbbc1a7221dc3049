using Engine.Core;

namespace Engine.Models.Networks;

/// <summary>
/// The inputs of one denoiser forward pass, named as diffusers' forward arguments. All are float32
/// device tensors; <see cref="Timestep"/> is [B] (or [1], broadcast), <see cref="ClassLabels"/> [B]
/// holds integer values.
/// </summary>
public sealed record DenoiserInputs(Tensor Sample, Tensor Timestep)
{
    /// <summary>Class labels [B] for class-conditional models.</summary>
    public Tensor? ClassLabels { get; init; }

    /// <summary>Text conditioning [B, L, D] for cross-attention models.</summary>
    public Tensor? EncoderHiddenStates { get; init; }

    /// <summary>Pooled text embedding [B, D] (SD3).</summary>
    public Tensor? PooledProjections { get; init; }

    /// <summary>ControlNet residuals a UNet adds to its skips and mid block output (null: none).</summary>
    public UNetResiduals? Residuals { get; init; }
}
