using System.Numerics.Tensors;
using Engine.Kernels;

namespace Engine.Core.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu)
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
            var src = xArr.AsSpan(xOff + start, count);
            // Two passes in double: mean, then centred variance (stable for large offsets).
            double sum = 0;
            foreach (float v in src) sum += v;
            double mean = sum / count, sq = 0;
            foreach (float v in src) { double d = v - mean; sq += d * d; }
            float rstd = (float)(1.0 / Math.Sqrt(sq / count + eps)), meanF = (float)mean;
            int channel0 = (ng % groups) * perGroup;
            for (int ci = 0; ci < perGroup; ci++)
            {
                int ch = channel0 + ci;
                float scale = rstd * (g?[ch] ?? 1f), shift = (bt?[ch] ?? 0f) - meanF * scale;
                var s = xArr.AsSpan(xOff + start + ci * spatial, spatial);
                var d = oArr.AsSpan(oOff + start + ci * spatial, spatial);
                TensorPrimitives.Multiply(s, scale, d);
                TensorPrimitives.Add(d, shift, d);
                if (silu) for (int i = 0; i < d.Length; i++) d[i] = KernelMath.Silu(d[i]);
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
        Parallel.For(0, rows, Parallelism, r =>
        {
            var src = xArr.AsSpan(xOff + r * d, d);
            var dst = oArr.AsSpan(oOff + r * d, d);
            double sum = 0;
            foreach (float v in src) sum += v;
            double mean = sum / d, sq = 0;
            foreach (float v in src) { double dv = v - mean; sq += dv * dv; }
            float rstd = (float)(1.0 / Math.Sqrt(sq / d + eps));
            TensorPrimitives.Multiply(src, rstd, dst);
            TensorPrimitives.Add(dst, (float)(-mean * rstd), dst);
            if (g is not null) TensorPrimitives.Multiply(dst, g, dst);
            if (bt is not null) TensorPrimitives.Add(dst, bt, dst);
        });
    }
}
