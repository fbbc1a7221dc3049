using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Engine.Core;
using Tensor = Engine.Core.Tensor;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <summary>
    /// GroupNorm(+SiLU), one parallel job per (image, group). Statistics take two vectorised read-only
    /// passes (the mean, then the sum of squared deviations, which stays stable when the mean is large);
    /// a third pass writes (x - mean) * scale + shift per channel, the normalisation and the affine
    /// folded into one scale and shift, with SiLU applied in the same pass.
    /// </summary>
    protected override unsafe void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        int n = x.Dim(0), c = x.Dim(1), perGroup = c / groups;
        int spatial = (int)(x.Length / ((long)n * c));
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        float[]? g = gamma is null ? null : Span(gamma).ToArray();
        float[]? bt = beta is null ? null : Span(beta).ToArray();
        Parallel.For(0, n * groups, Parallelism, ng =>
        {
            int start = ng * perGroup * spatial, count = perGroup * spatial;
            if (count == 0) return;
            fixed (float* px = &xArr[xOff + start], po = &oArr[oOff + start])
            {
                float mean = TensorPrimitives.Sum(new ReadOnlySpan<float>(px, count)) / count;
                float variance = SumOfSquaredDeviations(px, count, mean) / count;
                float rstd = 1f / MathF.Sqrt(variance + eps);
                int channel0 = (ng % groups) * perGroup;
                for (int ci = 0; ci < perGroup; ci++)
                {
                    int ch = channel0 + ci;
                    float scale = rstd * (g?[ch] ?? 1f), shift = bt?[ch] ?? 0f;
                    NormalizePlane(px + (long)ci * spatial, po + (long)ci * spatial, spatial, mean, scale, shift, silu);
                }
            }
        });
    }

    /// <summary>sum((x - mean)^2) over <paramref name="count"/> floats, vectorised.</summary>
    private static unsafe float SumOfSquaredDeviations(float* x, int count, float mean)
    {
        int i = 0;
        float sum = 0f;
        if (Vector512.IsHardwareAccelerated) sum = SumOfSquaredDeviations<Width512, Vector512<float>>(x, count, mean, ref i);
        else if (Vector256.IsHardwareAccelerated) sum = SumOfSquaredDeviations<Width256, Vector256<float>>(x, count, mean, ref i);
        for (; i < count; i++) { float d = x[i] - mean; sum += d * d; }
        return sum;
    }

    /// <summary>The vector part: two accumulators over pairs of vectors; <paramref name="i"/> ends where the scalar tail starts.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe float SumOfSquaredDeviations<TW, TV>(float* x, int count, float mean, ref int i)
        where TW : struct, ISimdWidth<TV> where TV : struct
    {
        int w = TW.Lanes;
        TV m = TW.Create(mean), a0 = default, a1 = default;
        for (; i + 2 * w <= count; i += 2 * w)
        {
            var d0 = TW.Subtract(TW.Load(x + i), m); var d1 = TW.Subtract(TW.Load(x + i + w), m);
            a0 = TW.FusedMultiplyAdd(d0, d0, a0); a1 = TW.FusedMultiplyAdd(d1, d1, a1);
        }
        return TW.Sum(TW.Add(a0, a1));
    }

    /// <summary>y = (x - mean) * scale + shift, then SiLU when asked, in one pass.</summary>
    private static unsafe void NormalizePlane(float* x, float* y, int count, float mean, float scale, float shift, bool silu)
    {
        var source = new ReadOnlySpan<float>(x, count);
        var target = new Span<float>(y, count);
        if (silu) Pointwise.Map(source, target, new NormalizeOperator<SiluOperator>(mean, scale, shift));
        else Pointwise.Map(source, target, new NormalizeOperator<IdentityOperator>(mean, scale, shift));
    }

    /// <summary>
    /// act((x - mean) * scale + shift): a fused multiply-add in the vector bodies, a multiply then an add
    /// in the scalar tail (as the kernels round).
    /// </summary>
    private readonly struct NormalizeOperator<TActivation>(float mean, float scale, float shift) : IUnaryOperator
        where TActivation : struct, IUnaryOperator
    {
        public float Invoke(float x) => default(TActivation).Invoke((x - mean) * scale + shift);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector256<float> Invoke(Vector256<float> x) =>
            default(TActivation).Invoke(Vector256.FusedMultiplyAdd(x - Vector256.Create(mean), Vector256.Create(scale), Vector256.Create(shift)));

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public Vector512<float> Invoke(Vector512<float> x) =>
            default(TActivation).Invoke(Vector512.FusedMultiplyAdd(x - Vector512.Create(mean), Vector512.Create(scale), Vector512.Create(shift)));
    }

    /// <inheritdoc />
    protected override void LayerNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        int d = x.Dim(-1), rows = (int)(x.Length / d);
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        float[]? g = gamma is null ? null : Span(gamma).ToArray();
        float[]? bt = beta is null ? null : Span(beta).ToArray();
        // Rows are short (hundreds to a few thousand), so batch them into jobs of ~16K elements.
        int rowsPerJob = Math.Max(1, 16384 / Math.Max(1, d));
        Parallel.For(0, (rows + rowsPerJob - 1) / rowsPerJob, Parallelism, job =>
        {
            for (int r = job * rowsPerJob; r < Math.Min(rows, (job + 1) * rowsPerJob); r++)
            {
                var src = xArr.AsSpan(xOff + r * d, d);
                var dst = oArr.AsSpan(oOff + r * d, d);
                float mean = TensorPrimitives.Sum(src) / d;
                TensorPrimitives.Subtract(src, mean, dst);
                float rstd = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(dst) / d + eps);
                if (g is not null && bt is not null)
                {
                    TensorPrimitives.Multiply(dst, rstd, dst);
                    TensorPrimitives.MultiplyAdd(dst, g, bt, dst);
                }
                else
                {
                    TensorPrimitives.Multiply(dst, rstd, dst);
                    if (g is not null) TensorPrimitives.Multiply(dst, g, dst);
                    if (bt is not null) TensorPrimitives.Add(dst, bt, dst);
                }
            }
        });
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
