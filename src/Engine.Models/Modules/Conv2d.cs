using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>torch.nn.Conv2d with square kernel, symmetric padding and bias.</summary>
public sealed class Conv2d
{
    /// <summary>Declares <c>name.weight</c> [out, in, k, k] and <c>name.bias</c> in <paramref name="parent"/>.</summary>
    public Conv2d(ParameterScope parent, string name, int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true)
    {
        In = inChannels;
        Out = outChannels;
        Kernel = kernel;
        Stride = stride;
        Padding = padding;
        Weight = parent.Add($"{name}.weight", [outChannels, inChannels, kernel, kernel]);
        Weight.AllowsHalfStorage = true;
        Bias = bias ? parent.Add($"{name}.bias", [outChannels]) : null;
    }

    /// <summary>Input channels.</summary>
    public int In { get; }

    /// <summary>Output channels.</summary>
    public int Out { get; }

    /// <summary>Kernel size.</summary>
    public int Kernel { get; }

    /// <summary>Stride.</summary>
    public int Stride { get; }

    /// <summary>Zero padding on every side.</summary>
    public int Padding { get; }

    /// <summary>[out, in, k, k].</summary>
    public Parameter Weight { get; }

    /// <summary>[out] or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>Applies the convolution to x [N, in, H, W], returning a new tensor.</summary>
    public Tensor Forward(Tensor x) => ForwardChunk(x, 0, Out);

    /// <summary>Computes only output channels [start, start + count) through a slice of the weight.</summary>
    public Tensor ForwardChunk(Tensor x, int start, int count)
    {
        if (x.Rank != 4) throw new ArgumentException($"Conv2d input must be [N, C, H, W], got {x}.");
        int ho = (x.Dim(2) + 2 * Padding - Kernel) / Stride + 1, wo = (x.Dim(3) + 2 * Padding - Kernel) / Stride + 1;
        var y = x.Device.Allocate(x.DType, x.Dim(0), count, ho, wo);
        var w = count == Out ? Weight.Tensor : Weight.Tensor.Slice(start, count);
        var b = Bias is null ? null : count == Out ? Bias.Tensor : Bias.Tensor.Slice(start, count);
        x.Device.Conv2d(x, w, b, y, Stride, Padding);
        return y;
    }
}
