using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Core;
using Tensor = Engine.Core.Tensor;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <summary>
    /// GroupNorm(+SiLU), one parallel job per (image, group). The statistics read the group once
    /// (<see cref="NormKernels.Moments"/>: blocks small enough for L1 get an exact two-pass mean and
    /// variance, merged in double); a second pass writes (x - mean) * scale + shift per channel, the
    /// normalisation and the affine folded into one scale and shift, with SiLU applied in the same pass.
    /// </summary>
    protected override unsafe void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        int n = x.Dim(0), c = x.Dim(1), perGroup = c / groups;
        int spatial = (int)(x.Length / ((long)n * c));
        if ((long)perGroup * spatial == 0) return;
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        nint px = (nint)(xArr.Pointer + xOff), po = (nint)(oArr.Pointer + oOff);
        float[]? g = gamma is null ? null : Span(gamma).ToArray();
        float[]? bt = beta is null ? null : Span(beta).ToArray();
        Parallel.For(0, n * groups, Parallelism, ng => NormalizeGroup((float*)px, (float*)po, ng, groups, perGroup, spatial, g, bt, eps, silu));
    }

    /// <summary>One (image, group) of <see cref="GroupNormCore"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static unsafe void NormalizeGroup(float* x, float* y, int ng, int groups, int perGroup, int spatial, float[]? g, float[]? bt, float eps, bool silu)
    {
        long start = (long)ng * perGroup * spatial;
        var (mean, variance) = NormKernels.Moments(x + start, (long)perGroup * spatial);
        float rstd = 1f / MathF.Sqrt(variance + eps);
        int channel0 = (ng % groups) * perGroup;
        for (int ci = 0; ci < perGroup; ci++)
        {
            int ch = channel0 + ci;
            float scale = rstd * (g?[ch] ?? 1f), shift = bt?[ch] ?? 0f;
            long at = start + (long)ci * spatial;
            NormKernels.NormalizePlane(x + at, y + at, spatial, mean, scale, shift, silu);
        }
    }

    /// <summary>
    /// LayerNorm over the last dimension: jobs of whole rows (about ChunkSize elements each, since rows are
    /// hundreds to a few thousand floats), each row read from memory once and written once
    /// (<see cref="NormKernels.LayerNormRows"/>). A missing gamma or beta is a row of ones or zeros.
    /// </summary>
    protected override unsafe void LayerNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        int d = x.Dim(-1), rows = (int)(x.Length / Math.Max(1, d));
        if (d == 0 || rows == 0) return;
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        nint px = (nint)(xArr.Pointer + xOff), po = (nint)(oArr.Pointer + oOff);
        float[] g = gamma is null ? Enumerable.Repeat(1f, d).ToArray() : Span(gamma).ToArray();
        float[] bt = beta is null ? new float[d] : Span(beta).ToArray();
        int rowsPerJob = Math.Max(1, ChunkSize / d), jobs = (rows + rowsPerJob - 1) / rowsPerJob;
        void Job(int job)
        {
            int r0 = job * rowsPerJob, count = Math.Min(rowsPerJob, rows - r0);
            fixed (float* pg = g, pb = bt)
                NormKernels.LayerNormRows((float*)px + (long)r0 * d, (float*)po + (long)r0 * d, count, d, pg, pb, eps);
        }
        if (jobs == 1) Job(0);
        else Parallel.For(0, jobs, Parallelism, Job);
    }

    /// <inheritdoc />
    protected override void SoftmaxCore(Tensor x, Tensor output)
    {
        int d = x.Dim(-1), rows = (int)(x.Length / d);
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        Parallel.For(0, rows, Parallelism, r => TensorPrimitives.SoftMax(xArr.AsSpan(xOff + r * d, d), oArr.AsSpan(oOff + r * d, d)));
    }
}
