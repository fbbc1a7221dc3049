using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>ControlNetConditioningEmbedding</c>: maps the pixel-space control image down to the latent
/// size. conv_in (3x3) and SiLU, then for each step between entries of <c>conditioning_embedding_out_channels</c>
/// a 3x3 conv (stride 1) and a 3x3 conv (stride 2, to the next width), each followed by SiLU, then conv_out
/// (3x3, no activation) to the UNet's first block width. The side shrinks by 2^(widths - 1).
/// </summary>
public sealed class ControlNetConditioningEmbedding
{
    private readonly Conv2d _convIn, _convOut;
    private readonly Conv2d[] _blocks;

    /// <summary>Declares conv_in, blocks.0 .. blocks.2(n-1)-1 and conv_out in <paramref name="scope"/>.</summary>
    public ControlNetConditioningEmbedding(ParameterScope scope, int conditioningChannels, IReadOnlyList<int> widths, int outChannels)
    {
        if (widths.Count < 1) throw new ArgumentException("conditioning_embedding_out_channels must name at least one width.");
        ConditioningChannels = conditioningChannels;
        _convIn = new Conv2d(scope, "conv_in", conditioningChannels, widths[0], 3, 1, 1);
        _blocks = new Conv2d[2 * (widths.Count - 1)];
        for (int i = 0; i < widths.Count - 1; i++)
        {
            _blocks[2 * i] = new Conv2d(scope, $"blocks.{2 * i}", widths[i], widths[i], 3, 1, 1);
            _blocks[2 * i + 1] = new Conv2d(scope, $"blocks.{2 * i + 1}", widths[i], widths[i + 1], 3, 2, 1);
        }
        _convOut = new Conv2d(scope, "conv_out", widths[^1], outChannels, 3, 1, 1);
        DownFactor = 1 << (widths.Count - 1);
    }

    /// <summary>Channels of the control image.</summary>
    public int ConditioningChannels { get; }

    /// <summary>Factor by which the image's sides shrink.</summary>
    public int DownFactor { get; }

    /// <summary>Embeds <paramref name="image"/> [B, conditioning_channels, H, W]; returns a new tensor [B, out, H / f, W / f].</summary>
    public Tensor Forward(Tensor image)
    {
        var device = image.Device;
        var h = _convIn.Forward(image);
        device.Activate(h, h, Activation.SiLU);
        foreach (var conv in _blocks)
        {
            var next = conv.Forward(h);
            h.Dispose();
            h = next;
            device.Activate(h, h, Activation.SiLU);
        }
        try { return _convOut.Forward(h); }
        finally { h.Dispose(); }
    }
}
