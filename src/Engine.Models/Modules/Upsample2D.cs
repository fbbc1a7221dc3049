using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>diffusers <c>Upsample2D</c> with a convolution: nearest-neighbour 2x, then 3x3 conv, padding 1.</summary>
public sealed class Upsample2D
{
    private readonly Conv2d _conv;

    /// <summary>Declares <c>conv.weight</c> and <c>conv.bias</c> in <paramref name="scope"/>.</summary>
    public Upsample2D(ParameterScope scope, int channels, int outChannels) =>
        _conv = new Conv2d(scope, "conv", channels, outChannels, 3, 1, 1);

    /// <summary>Upsamples x [N, C, H, W] to a new tensor [N, out, 2H, 2W].</summary>
    public Tensor Forward(Tensor x)
    {
        using var up = x.Device.Allocate(x.DType, x.Dim(0), x.Dim(1), 2 * x.Dim(2), 2 * x.Dim(3));
        x.Device.UpsampleNearest2x(x, up);
        return _conv.Forward(up);
    }
}
