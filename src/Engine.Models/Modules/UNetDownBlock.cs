using Engine.Core;

namespace Engine.Models.Modules;

/// <summary>
/// A down block of a UNet or VAE encoder (DownBlock2D, AttnDownBlock2D, CrossAttnDownBlock2D,
/// DownEncoderBlock2D): resnets, each optionally followed by a spatial mixer, then an optional
/// downsampler. Each stage's output is a skip connection for the up path.
/// </summary>
public sealed class UNetDownBlock(ResnetBlock2D[] resnets, ISpatialMixer[]? mixers, Downsample2D? downsampler)
{
    /// <summary>The resnets.</summary>
    public IReadOnlyList<ResnetBlock2D> Resnets { get; } = resnets;

    /// <summary>The mixers after each resnet, or empty.</summary>
    public IReadOnlyList<ISpatialMixer> Mixers { get; } = mixers ?? [];

    /// <summary>
    /// Runs the block on h (not disposed). With <paramref name="skips"/>, every stage output (including
    /// the returned tensor) is appended to it and owned by the list; without, intermediates are freed
    /// and the returned tensor belongs to the caller.
    /// </summary>
    public Tensor Forward(Tensor h, Tensor? temb, Tensor? context, List<Tensor>? skips)
    {
        Tensor current = h;
        bool ownsCurrent = false;
        void Advance(Tensor next)
        {
            if (skips is not null) skips.Add(next);
            else if (ownsCurrent) current.Dispose();
            current = next;
            ownsCurrent = skips is null;
        }
        for (int i = 0; i < resnets.Length; i++)
        {
            var r = resnets[i].Forward(current, temb);
            if (mixers is not null)
            {
                var m = mixers[i].Mix(r, context);
                r.Dispose();
                r = m;
            }
            Advance(r);
        }
        if (downsampler is not null) Advance(downsampler.Forward(current));
        return current;
    }
}
