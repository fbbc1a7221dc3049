using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// An up block of a UNet or VAE decoder (UpBlock2D, AttnUpBlock2D, CrossAttnUpBlock2D,
/// UpDecoderBlock2D): for each resnet, the newest skip connection (if the network has skips) is
/// concatenated on the channel axis, then the resnet and optional mixer run; an optional upsampler
/// ends the block.
/// </summary>
public sealed class UNetUpBlock(ResnetBlock2D[] resnets, ISpatialMixer[]? mixers, Upsample2D? upsampler)
{
    /// <summary>The resnets.</summary>
    public IReadOnlyList<ResnetBlock2D> Resnets { get; } = resnets;

    /// <summary>The mixers after each resnet, or empty.</summary>
    public IReadOnlyList<ISpatialMixer> Mixers { get; } = mixers ?? [];

    /// <summary>
    /// Runs the block on h (not disposed), popping (and disposing) one skip per resnet from the end of
    /// <paramref name="skips"/> when given. Returns a new tensor owned by the caller.
    /// </summary>
    public Tensor Forward(Tensor h, Tensor? temb, Tensor? context, List<Tensor>? skips)
    {
        var device = h.Device;
        Tensor current = h;
        bool owns = false;
        try
        {
            for (int i = 0; i < resnets.Length; i++)
            {
                Tensor input = current;
                Tensor? joined = null;
                if (skips is not null)
                {
                    if (skips.Count == 0) throw new InvalidOperationException("UNet up block ran out of skip connections.");
                    var skip = skips[^1];
                    skips.RemoveAt(skips.Count - 1);
                    using (skip)
                    {
                        joined = device.Allocate(current.DType, current.Dim(0), current.Dim(1) + skip.Dim(1), current.Dim(2), current.Dim(3));
                        device.ConcatChannels(current, skip, joined);
                    }
                    input = joined;
                }
                var r = resnets[i].Forward(input, temb);
                joined?.Dispose();
                if (mixers is not null)
                {
                    var m = mixers[i].Mix(r, context);
                    r.Dispose();
                    r = m;
                }
                if (owns) current.Dispose();
                current = r;
                owns = true;
            }
            if (upsampler is not null)
            {
                var u = upsampler.Forward(current);
                if (owns) current.Dispose();
                current = u;
                owns = true;
            }
            owns = false;
            return current;
        }
        finally
        {
            if (owns) current.Dispose();
        }
    }
}
