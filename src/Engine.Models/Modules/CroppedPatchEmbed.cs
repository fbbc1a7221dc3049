using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>PatchEmbed</c> in its SD3 form (<c>pos_embed_max_size</c> set): a p x p stride-p
/// convolution <c>proj</c> flattened to tokens [B, (H/p)(W/p), D], plus the centre crop of a
/// max x max 2-D sin-cos table. diffusers stores that table as the persistent buffer
/// <c>pos_embed.pos_embed</c> [1, max*max, D], so it is bound from the checkpoint like a weight; the
/// crop for a grid is copied out row by row on the device once and kept until the weights change.
/// </summary>
public sealed class CroppedPatchEmbed
{
    private readonly Conv2d _proj;
    private readonly Parameter _table;
    private readonly CropCache _crops = new();

    /// <summary>Declares <c>proj.weight</c>, <c>proj.bias</c> and <c>pos_embed</c> in <paramref name="scope"/>.</summary>
    public CroppedPatchEmbed(ParameterScope scope, int patchSize, int inChannels, int embedDim, int posEmbedMaxSize)
    {
        if (patchSize < 1) throw new ArgumentException($"PatchEmbed '{scope.Path}': patch size {patchSize} must be positive.");
        if (posEmbedMaxSize < 1) throw new ArgumentException($"PatchEmbed '{scope.Path}': pos_embed_max_size {posEmbedMaxSize} must be positive.");
        PatchSize = patchSize;
        EmbedDim = embedDim;
        MaxSize = posEmbedMaxSize;
        _proj = new Conv2d(scope, "proj", inChannels, embedDim, patchSize, patchSize, 0);
        _table = scope.Add("pos_embed", [1, posEmbedMaxSize * posEmbedMaxSize, embedDim]);
        scope.Own(_crops);
    }

    /// <summary>Patch size p.</summary>
    public int PatchSize { get; }

    /// <summary>Token width.</summary>
    public int EmbedDim { get; }

    /// <summary>The side of the stored position grid; inputs may have at most this many patches per side.</summary>
    public int MaxSize { get; }

    /// <summary>Embeds x [B, C, H, W] into a new token tensor [B, (H/p)(W/p), D].</summary>
    public Tensor Forward(Tensor x)
    {
        var device = x.Device;
        if (x.Rank != 4 || x.Dim(2) % PatchSize != 0 || x.Dim(3) % PatchSize != 0)
            throw new ArgumentException($"PatchEmbed: input {x} must be [B, C, H, W] with H and W divisible by {PatchSize}.");
        int b = x.Dim(0), gh = x.Dim(2) / PatchSize, gw = x.Dim(3) / PatchSize;
        if (gh > MaxSize || gw > MaxSize)
            throw new ArgumentException($"PatchEmbed: input {x} has a {gh}x{gw} patch grid, larger than pos_embed_max_size {MaxSize}.");
        using var conv = _proj.Forward(x);
        var tokens = device.Allocate(conv.DType, b, gh * gw, EmbedDim);
        device.Transpose(conv.Reshape(b, EmbedDim, gh * gw), tokens);
        device.Add(tokens, Positions(device, gh, gw), tokens);
        return tokens;
    }

    /// <summary>The [1, gh*gw, D] centre crop of the table (the table itself when the grid is the full size).</summary>
    private Tensor Positions(Device device, int gh, int gw)
    {
        var table = _table.Tensor;
        if (gh == MaxSize && gw == MaxSize) return table;
        return _crops.Get(table, (gh, gw), () =>
        {
            int top = (MaxSize - gh) / 2, left = (MaxSize - gw) / 2;
            var rows = table.Reshape(MaxSize * MaxSize, EmbedDim);
            var crop = device.Allocate(1, gh * gw, EmbedDim);
            var cropRows = crop.Reshape(gh * gw, EmbedDim);
            for (int r = 0; r < gh; r++)
                device.Copy(rows.Slice((top + r) * MaxSize + left, gw), cropRows.Slice(r * gw, gw));
            return crop;
        });
    }

    /// <summary>Crops per grid, valid for one bound table tensor (rebinding the weights replaces it).</summary>
    private sealed class CropCache : IDisposable
    {
        private readonly Dictionary<(int, int), Tensor> _crops = new();
        private readonly object _lock = new();
        private Tensor? _source;

        public Tensor Get(Tensor source, (int, int) grid, Func<Tensor> create)
        {
            lock (_lock)
            {
                if (!ReferenceEquals(source, _source))
                {
                    Clear();
                    _source = source;
                }
                if (!_crops.TryGetValue(grid, out var crop)) _crops[grid] = crop = create();
                return crop;
            }
        }

        public void Dispose()
        {
            lock (_lock)
            {
                Clear();
                _source = null;
            }
        }

        private void Clear()
        {
            foreach (var t in _crops.Values) t.Dispose();
            _crops.Clear();
        }
    }
}
