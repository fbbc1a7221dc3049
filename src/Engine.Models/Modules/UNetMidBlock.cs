using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// A UNet or VAE mid block (UNetMidBlock2D, UNetMidBlock2DCrossAttn): resnet 0, then pairs of a
/// spatial mixer (attention or transformer; absent when attention is switched off) and a resnet.
/// </summary>
public sealed class UNetMidBlock(ResnetBlock2D[] resnets, ISpatialMixer[]? mixers)
{
    /// <summary>The mixers between resnets, or empty.</summary>
    public IReadOnlyList<ISpatialMixer> Mixers { get; } = mixers ?? [];

    /// <summary>Runs the block on h (not disposed); returns a new tensor owned by the caller.</summary>
    public Tensor Forward(Tensor h, Tensor? temb, Tensor? context)
    {
        var current = resnets[0].Forward(h, temb);
        for (int i = 1; i < resnets.Length; i++)
        {
            if (mixers is not null)
            {
                var m = mixers[i - 1].Mix(current, context);
                current.Dispose();
                current = m;
            }
            var r = resnets[i].Forward(current, temb);
            current.Dispose();
            current = r;
        }
        return current;
    }
}
