using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>RMSNorm</c> over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight. Built
/// from the layer norm op: the layer norm of the mirrored row [x, -x] has mean zero and variance
/// mean(x^2), so its first half is exactly the RMS-normalised row. The mirror and the half are
/// plain copies (concatenation and transposes), so nothing is approximated.
/// </summary>
public sealed class RmsNorm
{
    /// <summary>Declares <c>name.weight</c> [dim] when <paramref name="affine"/>.</summary>
    public RmsNorm(ParameterScope parent, string name, int dim, float eps, bool affine = true)
    {
        Dim = dim;
        Eps = eps;
        if (affine) Weight = parent.Add($"{name}.weight", [dim]);
    }

    /// <summary>Normalised width.</summary>
    public int Dim { get; }

    /// <summary>Epsilon added to the mean square.</summary>
    public float Eps { get; }

    /// <summary>Scale [D] or null.</summary>
    public Parameter? Weight { get; }

    /// <summary>Normalises x [..., D] into a new tensor.</summary>
    public Tensor Forward(Tensor x)
    {
        var y = x.Device.Allocate(x.DType, x.ShapeArray());
        try { Forward(x, y); }
        catch { y.Dispose(); throw; }
        return y;
    }

    /// <summary>Normalises x [..., D] into <paramref name="y"/> (same element count, any shape with last dim D).</summary>
    public void Forward(Tensor x, Tensor y)
    {
        var device = x.Device;
        if (x.Dim(-1) != Dim || y.Dim(-1) != Dim || y.Length != x.Length) throw new ArgumentException($"RMSNorm over {Dim} features got {x} into {y}.");
        int rows = checked((int)(x.Length / Dim));
        var flat = x.Reshape(rows, Dim);
        using var mirrored = device.Allocate(rows, 2 * Dim);
        using (var negated = device.Allocate(rows, Dim))
        {
            device.Affine(flat, negated, -1f, 0f);
            device.ConcatChannels(flat, negated, mirrored);
        }
        using var normed = device.Allocate(rows, 2 * Dim);
        device.LayerNorm(mirrored, null, null, normed, Eps);
        using var columns = device.Allocate(1, 2 * Dim, rows);
        device.Transpose(normed.Reshape(1, rows, 2 * Dim), columns);
        var target = y.Reshape(1, rows, Dim);
        device.Transpose(columns.Reshape(2 * Dim, rows).Slice(0, Dim).Reshape(1, Dim, rows), target);
        if (Weight is not null) device.Mul(target, Weight.Tensor, target);
    }
}
