using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>PatchEmbed</c> (sin-cos positions, no layer norm): a p x p stride-p convolution
/// <c>proj</c>, flattened to tokens [B, (H/p)(W/p), D], plus the 2-D sin-cos table. The table is not in
/// checkpoints; it is computed for the configured grid with base size sample_size / p, and recomputed
/// (same base size) when an input has another grid, as diffusers does.
/// </summary>
public sealed class PatchEmbed
{
    private readonly Conv2d _proj;
    private readonly DeviceTableCache<(int, int)> _positions = new();

    /// <summary>Declares <c>proj.weight</c> and <c>proj.bias</c> in <paramref name="scope"/>.</summary>
    public PatchEmbed(ParameterScope scope, int height, int width, int patchSize, int inChannels, int embedDim, double interpolationScale = 1.0)
    {
        if (patchSize < 1 || height % patchSize != 0 || width % patchSize != 0)
            throw new ArgumentException($"PatchEmbed '{scope.Path}': sample size {height}x{width} is not divisible by patch size {patchSize}.");
        PatchSize = patchSize;
        EmbedDim = embedDim;
        BaseSize = height / patchSize;
        InterpolationScale = interpolationScale;
        _proj = new Conv2d(scope, "proj", inChannels, embedDim, patchSize, patchSize, 0);
        scope.Own(_positions);
    }

    /// <summary>Patch size p.</summary>
    public int PatchSize { get; }

    /// <summary>Token width.</summary>
    public int EmbedDim { get; }

    /// <summary>The sin-cos base size (configured grid height).</summary>
    public int BaseSize { get; }

    /// <summary>Position interpolation scale.</summary>
    public double InterpolationScale { get; }

    /// <summary>Embeds x [B, C, H, W] into a new token tensor [B, (H/p)(W/p), D].</summary>
    public Tensor Forward(Tensor x)
    {
        var device = x.Device;
        if (x.Rank != 4 || x.Dim(2) % PatchSize != 0 || x.Dim(3) % PatchSize != 0)
            throw new ArgumentException($"PatchEmbed: input {x} must be [B, C, H, W] with H and W divisible by {PatchSize}.");
        int b = x.Dim(0), gh = x.Dim(2) / PatchSize, gw = x.Dim(3) / PatchSize;
        using var conv = _proj.Forward(x);
        var tokens = device.Allocate(conv.DType, b, gh * gw, EmbedDim);
        device.Transpose(conv.Reshape(b, EmbedDim, gh * gw), tokens);
        var table = _positions.Get(device, (gh, gw), () => (SinCosPositionEmbedding.Create(EmbedDim, gh, gw, BaseSize, InterpolationScale), [1, gh * gw, EmbedDim]));
        device.Add(tokens, table, tokens);
        return tokens;
    }
}
