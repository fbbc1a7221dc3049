using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>torch.nn.GroupNorm with affine parameters, optionally fused with the SiLU that follows it.</summary>
public sealed class GroupNorm
{
    /// <summary>Declares <c>name.weight</c> and <c>name.bias</c> [channels] in <paramref name="parent"/>.</summary>
    public GroupNorm(ParameterScope parent, string name, int groups, int channels, float eps, bool affine = true)
    {
        if (groups < 1 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm '{parent.Sub(name).Path}': {channels} channels are not divisible into {groups} groups.");
        Groups = groups;
        Channels = channels;
        Eps = eps;
        if (affine)
        {
            Weight = parent.Add($"{name}.weight", [channels]);
            Bias = parent.Add($"{name}.bias", [channels]);
        }
    }

    /// <summary>Number of groups.</summary>
    public int Groups { get; }

    /// <summary>Number of channels.</summary>
    public int Channels { get; }

    /// <summary>Variance epsilon.</summary>
    public float Eps { get; }

    /// <summary>Scale [C] or null.</summary>
    public Parameter? Weight { get; }

    /// <summary>Shift [C] or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>Normalises x [N, C, ...] into a new tensor, then applies SiLU when <paramref name="silu"/>.</summary>
    public Tensor Forward(Tensor x, bool silu = false)
    {
        var y = x.Device.Allocate(x.DType, x.ShapeArray());
        x.Device.GroupNorm(x, Weight?.Tensor, Bias?.Tensor, y, Groups, Eps, silu);
        return y;
    }
}
