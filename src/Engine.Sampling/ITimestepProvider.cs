using Engine.Core;

namespace Engine.Sampling;

/// <summary>Chooses the timestep each sample's model evaluation is conditioned on.</summary>
public interface ITimestepProvider
{
    /// <summary>
    /// Writes one timestep per sample into <paramref name="timesteps"/> [B] for the model input
    /// <paramref name="modelInput"/> [B, ...] of call <paramref name="call"/>, on the device.
    /// </summary>
    void Fill(Tensor modelInput, in DenoiserCall call, Tensor timesteps);
}
