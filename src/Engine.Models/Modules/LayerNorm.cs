using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>torch.nn.LayerNorm over the last dimension, with or without affine parameters.</summary>
public sealed class LayerNorm
{
    /// <summary>Declares <c>name.weight</c> and <c>name.bias</c> [dim] when <paramref name="affine"/>.</summary>
    public LayerNorm(ParameterScope parent, string name, int dim, float eps, bool affine = true)
    {
        Dim = dim;
        Eps = eps;
        if (affine)
        {
            Weight = parent.Add($"{name}.weight", [dim]);
            Bias = parent.Add($"{name}.bias", [dim]);
        }
    }

    /// <summary>Normalised width.</summary>
    public int Dim { get; }

    /// <summary>Variance epsilon.</summary>
    public float Eps { get; }

    /// <summary>Scale [D] or null.</summary>
    public Parameter? Weight { get; }

    /// <summary>Shift [D] or null.</summary>
    public Parameter? Bias { get; }

    /// <summary>Normalises x [..., D] into a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        var y = x.Device.Allocate(x.DType, x.ShapeArray());
        x.Device.LayerNorm(x, Weight?.Tensor, Bias?.Tensor, y, Eps);
        return y;
    }
}
