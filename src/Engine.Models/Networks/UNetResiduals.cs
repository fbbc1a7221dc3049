using Engine.Core;

namespace Engine.Models.Networks;

/// <summary>
/// What a ControlNet hands to a UNet: one residual per skip of the UNet's down path (conv_in's output, then
/// every resnet and downsampler output, in order) and one for the mid block's output. Disposing frees them.
/// </summary>
public sealed record UNetResiduals(IReadOnlyList<Tensor> Down, Tensor Mid) : IDisposable
{
    /// <summary>Frees every residual.</summary>
    public void Dispose()
    {
        foreach (var t in Down) t.Dispose();
        Mid.Dispose();
    }

    /// <summary>Adds residual j to skip j and <see cref="Mid"/> to <paramref name="mid"/>, in place; throws naming the first mismatch.</summary>
    public void AddTo(IReadOnlyList<Tensor> skips, Tensor mid)
    {
        if (Down.Count != skips.Count)
            throw new ArgumentException($"down_block_additional_residuals has {Down.Count} tensors; this UNet keeps {skips.Count} skips.");
        for (int j = 0; j < skips.Count; j++) AddOne(skips[j], Down[j], $"down_block_additional_residuals[{j}]");
        AddOne(mid, Mid, "mid_block_additional_residual");
    }

    private static void AddOne(Tensor target, Tensor residual, string name)
    {
        if (!residual.ShapeArray().SequenceEqual(target.ShapeArray()))
            throw new ArgumentException($"{name} {residual} should have the shape of the UNet's tensor {target}.");
        if (!ReferenceEquals(residual.Device, target.Device)) throw new ArgumentException($"{name} lives on {residual.Device.Name}, the UNet on {target.Device.Name}.");
        // A ControlNet may run in another activation precision than the UNet: its residual is added in the UNet's.
        if (residual.DType == target.DType) { target.Device.Add(target, residual, target); return; }
        using var converted = target.Device.Convert(residual, target.DType);
        target.Device.Add(target, converted, target);
    }
}
