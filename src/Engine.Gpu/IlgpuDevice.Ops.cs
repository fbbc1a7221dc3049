using Engine.Core;
using Device = Engine.Core.Device;
using Engine.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override bool ReadsHalfWeights => true;

    /// <inheritdoc />
    protected override void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha)
    {
        if (output.Length == 0) return;
        var p = new GemmParams
        {
            M = m, N = n, K = k, TransposeA = transposeA ? 1 : 0, TransposeB = transposeB ? 1 : 0,
            BroadcastB = broadcastB ? 1 : 0, HasBias = bias is null ? 0 : 1, Activation = activation, Alpha = alpha, Tile = _gemmTile,
        };
        var c = View(output);
        var cb = bias is null ? c : View(bias);
        bool wide = UseWideTile(m, n, batch);
        switch (b.DType)
        {
            case DType.F16: LaunchGemm(wide, new F16Weights(ViewF16(b)), View(a), cb, c, p, batch); break;
            case DType.BF16: LaunchGemm(wide, new BF16Weights(ViewBF16(b)), View(a), cb, c, p, batch); break;
            default: LaunchGemm(wide, new F32Weights(View(b)), View(a), cb, c, p, batch); break;
        }
    }

    private void LaunchGemm<TB>(bool wide, TB b, ArrayView<float> a, ArrayView<float> bias, ArrayView<float> c, GemmParams p, int batch)
        where TB : struct, IWeightView
    {
        int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
        var grid = GridOf((p.N + span - 1) / span, (p.M + span - 1) / span, batch, "MatMul");
        var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
        if (wide) _kernels.Gemm<TB, MicroTile8>()(config, a, b, bias, c, p);
        else _kernels.Gemm<TB, MicroTile>()(config, a, b, bias, c, p);
    }

    /// <inheritdoc />
    protected override void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        if (output.Length == 0) return;
        var p = new ConvParams
        {
            Cin = x.Dim(1), H = x.Dim(2), W = x.Dim(3), Cout = weight.Dim(0), Kh = weight.Dim(2), Kw = weight.Dim(3),
            Ho = output.Dim(2), Wo = output.Dim(3), Stride = stride, Padding = padding, HasBias = bias is null ? 0 : 1, Tile = _gemmTile,
        };
        var o = View(output);
        var ob = bias is null ? o : View(bias);
        bool wide = UseWideTile(p.Cout, p.Ho * p.Wo, x.Dim(0));
        switch (weight.DType)
        {
            case DType.F16: LaunchConv(wide, new F16Weights(ViewF16(weight)), View(x), ob, o, p, x.Dim(0)); break;
            case DType.BF16: LaunchConv(wide, new BF16Weights(ViewBF16(weight)), View(x), ob, o, p, x.Dim(0)); break;
            default: LaunchConv(wide, new F32Weights(View(weight)), View(x), ob, o, p, x.Dim(0)); break;
        }
    }

    private void LaunchConv<TW>(bool wide, TW w, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> o, ConvParams p, int batch)
        where TW : struct, IWeightView
    {
        int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
        var grid = GridOf((p.Ho * p.Wo + span - 1) / span, (p.Cout + span - 1) / span, batch, "Conv2d");
        var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
        if (wide) _kernels.Conv2d<TW, MicroTile8>()(config, x, w, bias, o, p);
        else _kernels.Conv2d<TW, MicroTile>()(config, x, w, bias, o, p);
    }

    /// <summary>
    /// Whether an [M, N] x batch product runs with 8 x 8 register blocks (8T x 8T block tiles): when
    /// those tiles alone give every multiprocessor a block, and the shared slabs fit. Smaller products
    /// keep 4 x 4 blocks, whose four times as many blocks keep the device busy.
    /// <see cref="ForcedWideTile"/> overrides it (tests).
    /// </summary>
    private bool UseWideTile(long m, long n, long batch)
    {
        if (TileLayout.SharedFloats(MicroTile8.Size, _gemmTile) * sizeof(float) > _sharedBytes) return false;
        if (ForcedWideTile is bool forced) return forced;
        long span = (long)MicroTile8.Size * _gemmTile;
        long blocks = (m + span - 1) / span * ((n + span - 1) / span) * batch;
        return blocks >= _accelerator.NumMultiprocessors;
    }

    /// <summary>When set, whether GEMM and convolution use 8 x 8 register blocks (tests exercise both with it).</summary>
    internal bool? ForcedWideTile { get; set; }

    /// <inheritdoc />
    protected override void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        if (x.Length == 0) return;
        int n = x.Dim(0), c = x.Dim(1);
        var p = new GroupNormParams
        {
            Groups = groups, ChannelsPerGroup = c / groups, Spatial = (int)(x.Length / ((long)n * c)), Eps = eps,
            HasGamma = gamma is null ? 0 : 1, HasBeta = beta is null ? 0 : 1, Silu = silu ? 1 : 0,
        };
        var o = View(output);
        var g = gamma is null ? o : View(gamma);
        var b = beta is null ? o : View(beta);
        int splits = GroupNormSplits((long)n * groups, (long)p.ChannelsPerGroup * p.Spatial);
        if (splits == 1)
        {
            _kernels.GroupNorm(RowConfig(n * groups, "GroupNorm"), View(x), g, b, o, p);
            return;
        }
        var partials = Scratch((long)n * groups * splits * 2);
        var grid = GridOf((long)n * groups, splits, 1, "GroupNorm");
        var group = new Index3D(_reductionGroup, 1, 1);
        _kernels.GroupNormPartial(new KernelConfig(grid, group, SharedMemoryConfig.RequestDynamic<float>(_reductionGroup)), View(x), partials, p);
        _kernels.GroupNormApply(new KernelConfig(grid, group), View(x), partials, g, b, o, p);
    }

    /// <summary>
    /// Blocks per group for GroupNorm: enough that the whole launch has about eight blocks per
    /// multiprocessor, but at least four values per thread in each block's chunk. 1 runs the
    /// single-block kernel. <see cref="ForcedGroupNormSplits"/> overrides it (tests).
    /// </summary>
    private int GroupNormSplits(long blocks, long count)
    {
        if (ForcedGroupNormSplits is int forced) return (int)Math.Clamp(forced, 1, Math.Max(1, count));
        long target = 8L * _accelerator.NumMultiprocessors;
        long wanted = (target + blocks - 1) / blocks;
        long most = count / (4L * _reductionGroup);
        return (int)Math.Max(1, Math.Min(Math.Min(wanted, most), 1024));
    }

    /// <summary>When set, the number of blocks each GroupNorm group is split over (tests exercise the split path with it).</summary>
    internal int? ForcedGroupNormSplits { get; set; }

    /// <inheritdoc />
    protected override void LayerNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        int d = x.Dim(-1);
        if (x.Length == 0) return;
        var o = View(output);
        _kernels.LayerNorm(RowConfig(x.Length / d, "LayerNorm"), View(x), gamma is null ? o : View(gamma), beta is null ? o : View(beta), o,
            d, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
    }

    /// <inheritdoc />
    protected override void SoftmaxCore(Tensor x, Tensor output)
    {
        int d = x.Dim(-1);
        if (x.Length == 0) return;
        _kernels.Softmax(RowConfig(x.Length / d, "Softmax"), View(x), View(output), d);
    }

    /// <summary>One reduction group per row: group of <see cref="_reductionGroup"/> threads and as many floats of shared memory.</summary>
    private KernelConfig RowConfig(long rows, string op) =>
        new(GridOf(rows, 1, 1, op), new Index3D(_reductionGroup, 1, 1), SharedMemoryConfig.RequestDynamic<float>(_reductionGroup));

    /// <inheritdoc />
    protected override void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        int batch = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), width = q.Dim(2), d = width / heads;
        if (q.Length == 0) return;
        if (lk == 0) { FillCore(output, 0f); return; }
        if (_tiledAttention && d <= AttentionTiledKernels.MaxHeadDim)
        {
            var tp = new AttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, Scale = scale };
            var tiledGrid = GridOf((lq + AttentionTiledKernels.Rows - 1) / AttentionTiledKernels.Rows, (long)batch * heads, 1, "Attention");
            var threads = new Index3D(AttentionTiledKernels.Threads, AttentionTiledKernels.Threads, 1);
            _kernels.AttentionTiled(new KernelConfig(tiledGrid, threads, SharedMemoryConfig.RequestDynamic<float>(AttentionTiledKernels.SharedFloats(d))),
                View(q), View(k), View(v), View(output), tp);
            return;
        }
        int group = _attentionGroup;
        int tile = 64;
        while (tile > 1 && (tile > group || AttentionSharedFloats(tile, d) * sizeof(float) > _sharedBytes)) tile /= 2;
        if (tile < 1 || AttentionSharedFloats(tile, d) * sizeof(float) > _sharedBytes)
            throw new ArgumentException($"Attention: head width {d} needs more shared memory than {Name} offers per group.");
        var p = new AttentionParams { Lq = lq, Lk = lk, Heads = heads, HeadDim = d, Width = width, Scale = scale, Tile = tile };
        var grid = GridOf((lq + tile - 1) / tile, (long)batch * heads, 1, "Attention");
        var config = new KernelConfig(grid, new Index3D(group, 1, 1), SharedMemoryConfig.RequestDynamic<float>(AttentionSharedFloats(tile, d)));
        _kernels.Attention(config, View(q), View(k), View(v), View(output), p);
    }

    private static int AttentionSharedFloats(int tile, int d) => AttentionKernels.SharedFloats(tile, d);

    /// <summary>A launch grid, checked against the accelerator's grid limits.</summary>
    private Index3D GridOf(long x, long y, long z, string op)
    {
        var max = _accelerator.MaxGridSize;
        if (x > max.X || y > max.Y || z > max.Z)
            throw new ArgumentException($"{op}: launch grid ({x}, {y}, {z}) exceeds {Name}'s limits ({max.X}, {max.Y}, {max.Z}).");
        return new Index3D((int)x, (int)y, (int)z);
    }

    /// <inheritdoc />
    protected override void ActivateCore(Tensor x, Tensor output, Activation activation)
    {
        if (x.Length == 0) return;
        _kernels.Activate(Extent(x.Length, "Activate"), View(x), View(output), activation);
    }

    /// <inheritdoc />
    protected override void GegluCore(Tensor x, Tensor output)
    {
        if (output.Length == 0) return;
        _kernels.Geglu(Extent(output.Length, "Geglu"), View(x), View(output), output.Dim(-1));
    }

    /// <inheritdoc />
    protected override void BinaryCore(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        if (output.Length == 0) return;
        int n = Extent(output.Length, op.ToString());
        if (a.Length == output.Length && b.Length == output.Length)
        {
            _kernels.Binary(n, View(a), View(b), View(output), op);
            return;
        }
        int rank = output.Rank;
        if (rank > 6) throw new ArgumentException($"{op}: broadcasting supports rank up to 6, got {output}.");
        var shape = output.ShapeArray();
        var aStrides = BroadcastStrides(a.Shape, shape);
        var bStrides = BroadcastStrides(b.Shape, shape);
        // Pad to rank 6 with leading size-1 dimensions.
        Span<int> dims = stackalloc int[6];
        Span<long> sa = stackalloc long[6], sb = stackalloc long[6];
        for (int i = 0; i < 6; i++)
        {
            int src = i - (6 - rank);
            dims[i] = src >= 0 ? shape[src] : 1;
            sa[i] = src >= 0 ? aStrides[src] : 0;
            sb[i] = src >= 0 ? bStrides[src] : 0;
        }
        var s = new BroadcastShape
        {
            D0 = dims[0], D1 = dims[1], D2 = dims[2], D3 = dims[3], D4 = dims[4], D5 = dims[5],
            A0 = sa[0], A1 = sa[1], A2 = sa[2], A3 = sa[3], A4 = sa[4], A5 = sa[5],
            B0 = sb[0], B1 = sb[1], B2 = sb[2], B3 = sb[3], B4 = sb[4], B5 = sb[5],
        };
        _kernels.BinaryBroadcast(n, View(a), View(b), View(output), s, op);
    }

    /// <inheritdoc />
    protected override void LinearCombinationCore(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients)
    {
        if (output.Length == 0) return;
        // Unused slots repeat the first input; Count keeps the kernel from reading them.
        ArrayView<float> X(ReadOnlySpan<Tensor> t, int i) => View(t[i < t.Length ? i : 0]);
        float C(ReadOnlySpan<float> c, int i) => i < c.Length ? c[i] : 0f;
        var terms = new LinearTerms
        {
            X0 = X(inputs, 0), X1 = X(inputs, 1), X2 = X(inputs, 2), X3 = X(inputs, 3),
            X4 = X(inputs, 4), X5 = X(inputs, 5), X6 = X(inputs, 6), X7 = X(inputs, 7),
            C0 = C(coefficients, 0), C1 = C(coefficients, 1), C2 = C(coefficients, 2), C3 = C(coefficients, 3),
            C4 = C(coefficients, 4), C5 = C(coefficients, 5), C6 = C(coefficients, 6), C7 = C(coefficients, 7),
            Count = inputs.Length,
        };
        _kernels.LinearCombination(Extent(output.Length, "LinearCombination"), View(output), terms);
    }

    /// <inheritdoc />
    protected override void AffineCore(Tensor x, Tensor output, float alpha, float beta)
    {
        if (x.Length == 0) return;
        _kernels.Affine(Extent(x.Length, "Affine"), View(x), View(output), alpha, beta);
    }

    /// <inheritdoc />
    protected override void FillCore(Tensor output, float value)
    {
        if (output.Length == 0) return;
        _kernels.Fill(Extent(output.Length, "Fill"), View(output), value);
    }

    /// <inheritdoc />
    protected override void TimestepEmbeddingCore(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale, float maxPeriod)
    {
        int dim = output.Dim(1), half = dim / 2;
        if (timesteps.Length == 0) return;
        if (half == 0) { FillCore(output, 0f); return; }
        var p = new TimestepParams
        {
            Dim = dim, Half = half, Flip = flipSinToCos ? 1 : 0, LogPeriod = -MathF.Log(maxPeriod), Shift = downscaleFreqShift, Scale = scale,
        };
        _kernels.TimestepEmbedding(Extent(timesteps.Length * half, "TimestepEmbedding"), View(timesteps), View(output), p);
    }

    /// <inheritdoc />
    protected override void ModulateCore(Tensor x, Tensor shift, Tensor scale, Tensor output)
    {
        if (x.Length == 0) return;
        _kernels.Modulate(Extent(x.Length, "Modulate"), View(x), View(shift), View(scale), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void GatedAddCore(Tensor residual, Tensor x, Tensor gate, Tensor output)
    {
        if (x.Length == 0) return;
        _kernels.GatedAdd(Extent(x.Length, "GatedAdd"), View(residual), View(x), View(gate), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void UpsampleNearest2xCore(Tensor x, Tensor output)
    {
        if (output.Length == 0) return;
        _kernels.UpsampleNearest2x(Extent(output.Length, "UpsampleNearest2x"), View(x), View(output), x.Dim(2), x.Dim(3));
    }

    /// <inheritdoc />
    protected override void ConcatChannelsCore(Tensor a, Tensor b, Tensor output)
    {
        if (output.Length == 0) return;
        int n = a.Dim(0);
        _kernels.ConcatChannels(Extent(output.Length, "ConcatChannels"), View(a), View(b), View(output), (int)(a.Length / n), (int)(b.Length / n));
    }

    /// <inheritdoc />
    protected override void SliceChannelsCore(Tensor x, int start, Tensor output)
    {
        if (output.Length == 0) return;
        int n = x.Dim(0);
        int inner = (int)(output.Length / ((long)n * output.Dim(1)));
        _kernels.SliceChannels(Extent(output.Length, "SliceChannels"), View(x), View(output), x.Dim(1) * inner, output.Dim(1) * inner, start * inner);
    }

    /// <inheritdoc />
    protected override void TransposeCore(Tensor x, Tensor output)
    {
        if (x.Length == 0) return;
        _kernels.Transpose(Extent(x.Length, "Transpose"), View(x), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void PatchifyCore(Tensor image, Tensor tokens, int patch, bool unpatchify)
    {
        if (tokens.Length == 0) return;
        var p = new PatchParams { C = image.Dim(1), H = image.Dim(2), W = image.Dim(3), Patch = patch, Unpatchify = unpatchify ? 1 : 0 };
        _kernels.Patchify(Extent(tokens.Length, unpatchify ? "Unpatchify" : "Patchify"), View(image), View(tokens), p);
    }

    /// <inheritdoc />
    protected override void RandomNormalCore(Tensor output, ulong seed, int firstSampleIndex, int step)
    {
        if (output.Length == 0) return;
        int perSample = (int)(output.Length / output.Dim(0));
        _kernels.RandomNormal(Extent(output.Length, "RandomNormal"), View(output), seed, firstSampleIndex, step, perSample);
    }
}
