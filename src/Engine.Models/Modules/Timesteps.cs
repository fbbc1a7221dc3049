using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>Timesteps</c>: the sinusoidal embedding of timesteps [B] (float32, as torch computes
/// it) into [B, channels]. No parameters.
/// </summary>
public sealed class Timesteps(int channels, bool flipSinToCos, float downscaleFreqShift, float scale = 1f)
{
    /// <summary>Embedding width.</summary>
    public int Channels { get; } = channels;

    /// <summary>Embeds timesteps [B] into a new tensor [B, channels].</summary>
    public Tensor Forward(Tensor timesteps)
    {
        var y = timesteps.Device.Allocate(timesteps.Length > int.MaxValue ? throw new ArgumentException("too many timesteps") : (int)timesteps.Length, Channels);
        timesteps.Device.TimestepEmbedding(timesteps.Reshape((int)timesteps.Length), y, flipSinToCos, downscaleFreqShift, scale);
        return y;
    }
}
