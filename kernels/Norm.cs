using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>Scalar arguments of <see cref="NormKernels.GroupNorm"/>.</summary>
public struct GroupNormParams
{
    /// <summary>Number of groups and channels per group.</summary>
    public int Groups, ChannelsPerGroup;
    /// <summary>Elements per channel (product of the spatial dimensions).</summary>
    public int Spatial;
    /// <summary>Variance epsilon.</summary>
    public float Eps;
    /// <summary>1 when gamma / beta views hold C values.</summary>
    public int HasGamma, HasBeta;
    /// <summary>1 to apply SiLU after the affine.</summary>
    public int Silu;
}

/// <summary>A group's mean and 1 / sqrt(var + eps).</summary>
public struct GroupStats
{
    /// <summary>Mean.</summary>
    public float Mean;
    /// <summary>Reciprocal standard deviation.</summary>
    public float Rstd;
}

/// <summary>Normalisations and row softmax: one group reduces one row (or one (n, group) block).</summary>
public static class NormKernels
{
    /// <summary>
    /// Sum of <paramref name="value"/> over the group, returned to every thread. Shared-memory tree:
    /// the group size must be a power of two and <paramref name="scratch"/> hold one float per thread;
    /// log2(size) + 2 barriers.
    /// </summary>
    public static float GroupSum(float value, ArrayView<float> scratch)
    {
        int t = Group.IdxX;
        scratch[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s) scratch[t] += scratch[t + s];
            Group.Barrier();
        }
        float total = scratch[0];
        Group.Barrier();
        return total;
    }

    /// <summary>Maximum of <paramref name="value"/> over the group; same contract as <see cref="GroupSum"/>.</summary>
    public static float GroupMax(float value, ArrayView<float> scratch)
    {
        int t = Group.IdxX;
        scratch[t] = value;
        Group.Barrier();
        for (int s = Group.DimX / 2; s > 0; s >>= 1)
        {
            if (t < s) scratch[t] = MathF.Max(scratch[t], scratch[t + s]);
            Group.Barrier();
        }
        float total = scratch[0];
        Group.Barrier();
        return total;
    }

    /// <summary>
    /// GroupNorm (+ optional SiLU) of x [N, C, spatial]: block (n, g) is ChannelsPerGroup * Spatial
    /// contiguous floats. mean = sum / count, var = sum (x - mean)^2 / count (two passes, biased),
    /// y = x * (rstd * gamma[c]) + (beta[c] - mean * rstd * gamma[c]), then silu.
    /// <para>Launch: grid (N * Groups), group G (power of two from the accelerator, at most 256);
    /// dynamic shared memory G floats for the reductions. Threads stride over the block.</para>
    /// </summary>
    public static void GroupNorm(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> output, GroupNormParams p)
    {
        var scratch = SharedMemory.GetDynamic<float>();
        int block = Grid.IdxX, t = Group.IdxX, g = Group.DimX;
        int count = p.ChannelsPerGroup * p.Spatial;
        long start = (long)block * count;
        float sum = 0f;
        for (int i = t; i < count; i += g) sum += x[start + i];
        float mean = GroupSum(sum, scratch) / count;
        float sq = 0f;
        for (int i = t; i < count; i += g) { float d = x[start + i] - mean; sq += d * d; }
        float rstd = 1f / MathF.Sqrt(GroupSum(sq, scratch) / count + p.Eps);
        int channel0 = (block % p.Groups) * p.ChannelsPerGroup;
        for (int i = t; i < count; i += g)
        {
            int ch = channel0 + i / p.Spatial;
            float scale = rstd * (p.HasGamma != 0 ? gamma[ch] : 1f);
            float shift = (p.HasBeta != 0 ? beta[ch] : 0f) - mean * scale;
            float y = x[start + i] * scale + shift;
            output[start + i] = p.Silu != 0 ? ScalarMath.Silu(y) : y;
        }
    }

    /// <summary>
    /// First half of a GroupNorm whose groups are split over several blocks (<see cref="GroupNormApply"/>
    /// is the second): block (gi, s) of grid (N * Groups, S) takes the s-th of S equal chunks of group
    /// gi and writes its mean and sum of squared deviations (two passes over the chunk, the second from
    /// cache) to <paramref name="partials"/>[(gi * S + s) * 2 + {0, 1}]. One block per group leaves most
    /// of a GPU idle at SD shapes (batch 2 x 32 groups = 64 blocks of 40960 values); S chunks per group
    /// fill it.
    /// <para>Launch: grid (N * Groups, S), group G (power of two, at most 256); dynamic shared memory G floats.</para>
    /// </summary>
    public static void GroupNormPartial(ArrayView<float> x, ArrayView<float> partials, GroupNormParams p)
    {
        var scratch = SharedMemory.GetDynamic<float>();
        int gi = Grid.IdxX, split = Grid.IdxY, splits = Grid.DimY, t = Group.IdxX, g = Group.DimX;
        int count = p.ChannelsPerGroup * p.Spatial, chunk = (count + splits - 1) / splits;
        int begin = split * chunk, end = begin + chunk < count ? begin + chunk : count;
        int n = end > begin ? end - begin : 0;
        long start = (long)gi * count;
        float sum = 0f;
        for (int i = begin + t; i < end; i += g) sum += x[start + i];
        float total = GroupSum(sum, scratch);
        float mean = n > 0 ? total / n : 0f;
        float sq = 0f;
        for (int i = begin + t; i < end; i += g) { float d = x[start + i] - mean; sq += d * d; }
        float m2 = GroupSum(sq, scratch);
        if (t == 0)
        {
            long o = ((long)gi * splits + split) * 2;
            partials[o] = mean;
            partials[o + 1] = m2;
        }
    }

    /// <summary>
    /// Second half of the split GroupNorm: every thread of block (gi, s) combines the S partial
    /// statistics of group gi (Chan et al.: mean = sum n_k m_k / n, M2 = sum M2_k + n_k (m_k - mean)^2;
    /// S is small and all threads read the same addresses), then normalises the s-th chunk as
    /// <see cref="GroupNorm"/> does. Launch: as <see cref="GroupNormPartial"/>, no shared memory.
    /// </summary>
    public static void GroupNormApply(ArrayView<float> x, ArrayView<float> partials, ArrayView<float> gamma, ArrayView<float> beta,
        ArrayView<float> output, GroupNormParams p)
    {
        int gi = Grid.IdxX, split = Grid.IdxY, splits = Grid.DimY, t = Group.IdxX, g = Group.DimX;
        int count = p.ChannelsPerGroup * p.Spatial, chunk = (count + splits - 1) / splits;
        var stats = CombinePartials(partials, gi, splits, count, p.Eps);
        float mean = stats.Mean, rstd = stats.Rstd;
        int begin = split * chunk, end = begin + chunk < count ? begin + chunk : count;
        long start = (long)gi * count;
        int channel0 = (gi % p.Groups) * p.ChannelsPerGroup;
        for (int i = begin + t; i < end; i += g)
        {
            int ch = channel0 + i / p.Spatial;
            float scale = rstd * (p.HasGamma != 0 ? gamma[ch] : 1f);
            float shift = (p.HasBeta != 0 ? beta[ch] : 0f) - mean * scale;
            float y = x[start + i] * scale + shift;
            output[start + i] = p.Silu != 0 ? ScalarMath.Silu(y) : y;
        }
    }

    /// <summary>
    /// Mean and 1 / sqrt(var + eps) of group <paramref name="gi"/> from its <paramref name="splits"/> partial
    /// statistics (Chan et al.: mean = sum n_k m_k / n, M2 = sum M2_k + n_k (m_k - mean)^2); every thread
    /// reads the same few addresses.
    /// </summary>
    public static GroupStats CombinePartials(ArrayView<float> partials, int gi, int splits, int count, float eps)
    {
        int chunk = (count + splits - 1) / splits;
        long pBase = (long)gi * splits * 2;
        float mean = 0f;
        for (int k = 0; k < splits; k++)
        {
            int b = k * chunk, e = b + chunk < count ? b + chunk : count;
            if (e > b) mean += partials[pBase + 2 * k] * (e - b);
        }
        mean /= count;
        float m2 = 0f;
        for (int k = 0; k < splits; k++)
        {
            int b = k * chunk, e = b + chunk < count ? b + chunk : count;
            if (e <= b) continue;
            float d = partials[pBase + 2 * k] - mean;
            m2 += partials[pBase + 2 * k + 1] + d * d * (e - b);
        }
        return new GroupStats { Mean = mean, Rstd = 1f / MathF.Sqrt(m2 / count + eps) };
    }

    /// <summary>
    /// LayerNorm over rows of length d: y = (x - mean) * rstd * gamma + beta, biased variance
    /// from two passes.
    /// <para>Launch: grid (rows), group G (power of two, at most 256); dynamic shared memory G floats.</para>
    /// </summary>
    public static void LayerNorm(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> output,
        int d, float eps, int hasGamma, int hasBeta)
    {
        var scratch = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, g = Group.DimX;
        long start = (long)Grid.IdxX * d;
        float sum = 0f;
        for (int i = t; i < d; i += g) sum += x[start + i];
        float mean = GroupSum(sum, scratch) / d;
        float sq = 0f;
        for (int i = t; i < d; i += g) { float dv = x[start + i] - mean; sq += dv * dv; }
        float rstd = 1f / MathF.Sqrt(GroupSum(sq, scratch) / d + eps);
        for (int i = t; i < d; i += g)
        {
            // (x - mean) * rstd rather than x * rstd - mean * rstd: a fused multiply-add there leaves
            // the rounding error of mean * rstd where the exact result is 0 (rows of one element).
            float y = (x[start + i] - mean) * rstd;
            if (hasGamma != 0) y *= gamma[i];
            if (hasBeta != 0) y += beta[i];
            output[start + i] = y;
        }
    }

    /// <summary>
    /// Softmax over rows of length d: exp(x - max) / sum exp(x - max).
    /// <para>Launch: grid (rows), group G (power of two, at most 256); dynamic shared memory G floats.</para>
    /// </summary>
    public static void Softmax(ArrayView<float> x, ArrayView<float> output, int d)
    {
        var scratch = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, g = Group.DimX;
        long start = (long)Grid.IdxX * d;
        float max = -float.MaxValue;
        for (int i = t; i < d; i += g) max = MathF.Max(max, x[start + i]);
        max = GroupMax(max, scratch);
        float sum = 0f;
        for (int i = t; i < d; i += g) sum += MathF.Exp(x[start + i] - max);
        float inv = 1f / GroupSum(sum, scratch);
        for (int i = t; i < d; i += g) output[start + i] = MathF.Exp(x[start + i] - max) * inv;
    }
}
