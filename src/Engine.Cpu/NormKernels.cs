using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Engine.Cpu;

/// <summary>
/// The statistics and row kernels of the CPU device's LayerNorm and GroupNorm, on raw pointers. Both read
/// their data from memory once for the statistics: LayerNorm rows and GroupNorm blocks are short enough to
/// stay in L1 for the second (deviation) pass, so the exact two-pass mean and variance cost one memory read.
/// Entry points are compiled fully optimised on first use (<see cref="MethodImplOptions.AggressiveOptimization"/>):
/// one forward pass calls each only a few dozen times, so tier-0 code would otherwise run many of them.
/// </summary>
internal static unsafe class NormKernels
{
    /// <summary>Floats per GroupNorm statistics block: 16 KiB, read from memory once and re-read from L1.</summary>
    internal const int MomentBlock = 4096;

    /// <summary>
    /// LayerNorm of <paramref name="rows"/> rows of <paramref name="d"/> floats: per row the mean and the
    /// sum of squared deviations (two vectorised passes, the second from L1), then one pass writing
    /// ((x - mean) * rstd) * gamma + beta with a fused multiply-add.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void LayerNormRows(float* x, float* y, int rows, int d, float* gamma, float* beta, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            float* src = x + (long)r * d, dst = y + (long)r * d;
            float mean = Sum(src, d) / d;
            float rstd = 1f / MathF.Sqrt(SumOfSquaredDeviations(src, d, mean) / d + eps);
            int i = 0;
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> m = Vector512.Create(mean), s = Vector512.Create(rstd);
                for (; i + 16 <= d; i += 16)
                    Vector512.FusedMultiplyAdd((Vector512.Load(src + i) - m) * s, Vector512.Load(gamma + i), Vector512.Load(beta + i)).Store(dst + i);
            }
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> m = Vector256.Create(mean), s = Vector256.Create(rstd);
                for (; i + 8 <= d; i += 8)
                    Vector256.FusedMultiplyAdd((Vector256.Load(src + i) - m) * s, Vector256.Load(gamma + i), Vector256.Load(beta + i)).Store(dst + i);
            }
            for (; i < d; i++) dst[i] = MathF.FusedMultiplyAdd((src[i] - mean) * rstd, gamma[i], beta[i]);
        }
    }

    /// <summary>
    /// GroupNorm's second pass over one channel plane: y = act((x - mean) * scale + shift), a fused multiply-add
    /// in the 512- and 256-bit bodies and a multiply then an add in the scalar tail, with SiLU when
    /// <paramref name="silu"/> (<see cref="SiluOperator"/>). Its own fully optimised method rather than
    /// <see cref="Pointwise.Map{TOp}"/>: the tiered generic loop ran as tier-0 code for the first four
    /// 320-channel 64x64 GroupNorms of a UNet step (40-60 ms CPU each against 2-3 ms optimised).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void NormalizePlane(float* x, float* y, int count, float mean, float scale, float shift, bool silu)
    {
        if (silu) Normalize<SiluOperator>(x, y, count, mean, scale, shift);
        else Normalize<IdentityOperator>(x, y, count, mean, scale, shift);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Normalize<TAct>(float* x, float* y, int count, float mean, float scale, float shift) where TAct : struct, IUnaryOperator
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> m = Vector512.Create(mean), s = Vector512.Create(scale), b = Vector512.Create(shift);
            for (; i <= count - 16; i += 16)
                default(TAct).Invoke(Vector512.FusedMultiplyAdd(Vector512.Load(x + i) - m, s, b)).Store(y + i);
        }
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(mean), s = Vector256.Create(scale), b = Vector256.Create(shift);
            for (; i <= count - 8; i += 8)
                default(TAct).Invoke(Vector256.FusedMultiplyAdd(Vector256.Load(x + i) - m, s, b)).Store(y + i);
        }
        for (; i < count; i++) y[i] = default(TAct).Invoke((x[i] - mean) * scale + shift);
    }

    /// <summary>
    /// Mean and (biased) variance of <paramref name="count"/> floats. Each block of <see cref="MomentBlock"/>
    /// gets its exact two-pass mean and sum of squared deviations; blocks are merged in double with the
    /// pairwise update of Chan et al., so one memory read gives statistics as stable as a full two-pass.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static (float Mean, float Variance) Moments(float* x, long count)
    {
        double n = 0, mean = 0, m2 = 0;
        for (long start = 0; start < count; start += MomentBlock)
        {
            int len = (int)Math.Min(MomentBlock, count - start);
            float* block = x + start;
            float blockMean = Sum(block, len) / len;
            double blockM2 = SumOfSquaredDeviations(block, len, blockMean);
            double total = n + len, delta = blockMean - mean;
            mean += delta * len / total;
            m2 += blockM2 + delta * delta * n * len / total;
            n = total;
        }
        return ((float)mean, (float)(m2 / Math.Max(1, n)));
    }

    /// <summary>The sum of <paramref name="count"/> floats, vectorised.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float Sum(float* x, int count)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated) sum = Sum<Width512, Vector512<float>>(x, count, ref i);
        else if (Vector256.IsHardwareAccelerated) sum = Sum<Width256, Vector256<float>>(x, count, ref i);
        for (; i < count; i++) sum += x[i];
        return sum;
    }

    /// <summary>sum((x - mean)^2) over <paramref name="count"/> floats, vectorised.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static float SumOfSquaredDeviations(float* x, int count, float mean)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated) sum = SumOfSquaredDeviations<Width512, Vector512<float>>(x, count, mean, ref i);
        else if (Vector256.IsHardwareAccelerated) sum = SumOfSquaredDeviations<Width256, Vector256<float>>(x, count, mean, ref i);
        for (; i < count; i++) { float d = x[i] - mean; sum += d * d; }
        return sum;
    }

    /// <summary>
    /// Four accumulators over groups of four vectors (the adds' latency, not the loads, would bound one or two
    /// on data in cache), then single vectors; <paramref name="i"/> ends where the scalar tail starts.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum<TW, TV>(float* x, int count, ref int i)
        where TW : struct, ISimdWidth<TV> where TV : struct
    {
        int w = TW.Lanes;
        TV a0 = default, a1 = default, a2 = default, a3 = default;
        for (; i + 4 * w <= count; i += 4 * w)
        {
            a0 = TW.Add(a0, TW.Load(x + i)); a1 = TW.Add(a1, TW.Load(x + i + w));
            a2 = TW.Add(a2, TW.Load(x + i + 2 * w)); a3 = TW.Add(a3, TW.Load(x + i + 3 * w));
        }
        for (; i + w <= count; i += w) a0 = TW.Add(a0, TW.Load(x + i));
        return TW.Sum(TW.Add(TW.Add(a0, a1), TW.Add(a2, a3)));
    }

    /// <summary>As <see cref="Sum{TW, TV}"/>, of the squared deviations from <paramref name="mean"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SumOfSquaredDeviations<TW, TV>(float* x, int count, float mean, ref int i)
        where TW : struct, ISimdWidth<TV> where TV : struct
    {
        int w = TW.Lanes;
        TV m = TW.Create(mean), a0 = default, a1 = default, a2 = default, a3 = default;
        for (; i + 4 * w <= count; i += 4 * w)
        {
            var d0 = TW.Subtract(TW.Load(x + i), m); var d1 = TW.Subtract(TW.Load(x + i + w), m);
            var d2 = TW.Subtract(TW.Load(x + i + 2 * w), m); var d3 = TW.Subtract(TW.Load(x + i + 3 * w), m);
            a0 = TW.FusedMultiplyAdd(d0, d0, a0); a1 = TW.FusedMultiplyAdd(d1, d1, a1);
            a2 = TW.FusedMultiplyAdd(d2, d2, a2); a3 = TW.FusedMultiplyAdd(d3, d3, a3);
        }
        for (; i + w <= count; i += w) { var d0 = TW.Subtract(TW.Load(x + i), m); a0 = TW.FusedMultiplyAdd(d0, d0, a0); }
        return TW.Sum(TW.Add(TW.Add(a0, a1), TW.Add(a2, a3)));
    }
}
