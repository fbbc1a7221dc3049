using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>Downsample2D</c> with a convolution: 3x3, stride 2, padding <c>padding</c>. With
/// padding 0 diffusers first pads one zero row and column at the bottom and right, which is built
/// here from two channel concatenations (the device has no asymmetric padding).
/// </summary>
public sealed class Downsample2D
{
    private readonly Conv2d _conv;
    private readonly int _padding;

    /// <summary>Declares <c>conv.weight</c> and <c>conv.bias</c> in <paramref name="scope"/>.</summary>
    public Downsample2D(ParameterScope scope, int channels, int outChannels, int padding)
    {
        if (padding is not (0 or 1)) throw new ArgumentException($"Downsample2D '{scope.Path}': padding {padding} is not supported; supported: 0, 1.");
        _padding = padding;
        _conv = new Conv2d(scope, "conv", channels, outChannels, 3, 2, padding);
    }

    /// <summary>Downsamples x [N, C, H, W] into a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        if (_padding != 0) return _conv.Forward(x);
        var device = x.Device;
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        // Append a zero column to every row, then a zero row to every channel plane.
        using var zeroCol = device.Zeros(n * c * h, 1);
        using var wide = device.Allocate(x.DType, n * c * h, w + 1);
        device.ConcatChannels(x.Reshape(n * c * h, w), zeroCol, wide);
        using var zeroRow = device.Zeros(n * c, w + 1);
        using var padded = device.Allocate(x.DType, n, c, h + 1, w + 1);
        device.ConcatChannels(wide.Reshape(n * c, h * (w + 1)), zeroRow, padded.Reshape(n * c, (h + 1) * (w + 1)));
        return _conv.Forward(padded);
    }
}
