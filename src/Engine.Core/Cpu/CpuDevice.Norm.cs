using System.Numerics.Tensors;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    /// <summary>
    /// GroupNorm(+SiLU), one parallel job per (image, group). Statistics take two vectorised passes
    /// (mean, then the sum of squared deviations written through the output as scratch, which stays
    /// stable when the mean is large); the normalisation and per-channel affine fold into one
    /// scale and shift per channel, and SiLU runs vectorised on the result.
    /// </summary>
    protected override void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
    {
        int n = x.Dim(0), c = x.Dim(1), perGroup = c / groups;
        int spatial = (int)(x.Length / ((long)n * c));
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        float[]? g = gamma is null ? null : Span(gamma).ToArray();
        float[]? bt = beta is null ? null : Span(beta).ToArray();
        var activation = silu ? Activation.SiLU : Activation.None;
        Parallel.For(0, n * groups, Parallelism, ng =>
        {
            int start = ng * perGroup * spatial, count = perGroup * spatial;
            var src = xArr.AsSpan(xOff + start, count);
            var dst = oArr.AsSpan(oOff + start, count);
            float mean = TensorPrimitives.Sum(src) / count;
            TensorPrimitives.Subtract(src, mean, dst);
            float variance = TensorPrimitives.SumOfSquares(dst) / count;
            float rstd = 1f / MathF.Sqrt(variance + eps);
            int channel0 = (ng % groups) * perGroup;
            for (int ci = 0; ci < perGroup; ci++)
            {
                int ch = channel0 + ci;
                float scale = rstd * (g?[ch] ?? 1f), shift = bt?[ch] ?? 0f;
                var plane = dst.Slice(ci * spatial, spatial);
                TensorPrimitives.Multiply(plane, scale, plane);
                TensorPrimitives.Add(plane, shift, plane);
                ApplyActivation(plane, activation);
            }
        });
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
}
