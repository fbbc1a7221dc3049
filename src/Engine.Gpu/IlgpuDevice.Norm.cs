using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            // Input and output share a half format (HandlesHalfActivations); half affines are widened for the kernel.
            using var s = Stage();
            GroupNormHalf(x, s.InOptional(gamma), s.InOptional(beta), output, groups, eps, silu);
            return;
        }
        int n = x.Dim(0);
        var p = GroupNormArguments(x, gamma, beta, groups, eps, silu);
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

    private static GroupNormParams GroupNormArguments(Tensor x, Tensor? gamma, Tensor? beta, int groups, float eps, bool silu)
    {
        int n = x.Dim(0), c = x.Dim(1);
        return new GroupNormParams
        {
            Groups = groups, ChannelsPerGroup = c / groups, Spatial = (int)(x.Length / ((long)n * c)), Eps = eps,
            HasGamma = gamma is null ? 0 : 1, HasBeta = beta is null ? 0 : 1, Silu = silu ? 1 : 0,
        };
    }

    /// <summary>
    /// Blocks per group for GroupNorm: enough that the whole launch has about eight blocks per
    /// multiprocessor, but at least four values per thread in each block's chunk. 1 runs the
    /// single-block kernel. <see cref="ForcedGroupNormSplits"/> overrides it (tests).
    /// </summary>
    internal int GroupNormSplits(long blocks, long count)
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
        if (x.DType != DType.F32)
        {
            using var s = Stage();
            LayerNormHalf(x, s.InOptional(gamma), s.InOptional(beta), output, eps);
            return;
        }
        var o = View(output);
        _kernels.LayerNorm(RowConfig(x.Length / d, "LayerNorm"), View(x), gamma is null ? o : View(gamma), beta is null ? o : View(beta), o,
            d, eps, gamma is null ? 0 : 1, beta is null ? 0 : 1);
    }

    /// <inheritdoc />
    protected override void SoftmaxCore(Tensor x, Tensor output)
    {
        int d = x.Dim(-1);
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            SoftmaxHalf(x, output, d);
            return;
        }
        _kernels.Softmax(RowConfig(x.Length / d, "Softmax"), View(x), View(output), d);
    }

    /// <summary>One reduction group per row: group of <see cref="_reductionGroup"/> threads and as many floats of shared memory.</summary>
    private KernelConfig RowConfig(long rows, string op) =>
        new(GridOf(rows, 1, 1, op), new Index3D(_reductionGroup, 1, 1), SharedMemoryConfig.RequestDynamic<float>(_reductionGroup));
}
