using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// 2-D convolution (cross-correlation as in PyTorch): x [N, C, H, W], weight [O, C, kh, kw],
    /// bias [O] or null, output [N, O, Ho, Wo] with Ho = (H + 2 pad - kh) / stride + 1. The weight may be
    /// stored as F16 or BF16 (see <see cref="ReadsHalfWeights"/>); products accumulate in float32.
    /// </summary>
    public void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride = 1, int padding = 0)
    {
        CheckCompute(x, nameof(x)); CheckDevice(weight, nameof(weight)); CheckCompute(output, nameof(output));
        if (x.Rank != 4 || weight.Rank != 4 || output.Rank != 4) throw new ArgumentException($"Conv2d needs rank-4 x, weight, output; got {x}, {weight}, {output}.");
        if (stride < 1 || padding < 0) throw new ArgumentException($"Conv2d stride {stride} must be >= 1 and padding {padding} >= 0.");
        if (weight.Dim(1) != x.Dim(1)) throw new ArgumentException($"Conv2d weight {weight} expects {weight.Dim(1)} input channels, x {x} has {x.Dim(1)}.");
        int ho = (x.Dim(2) + 2 * padding - weight.Dim(2)) / stride + 1, wo = (x.Dim(3) + 2 * padding - weight.Dim(3)) / stride + 1;
        if (ho < 1 || wo < 1 || output.Dim(0) != x.Dim(0) || output.Dim(1) != weight.Dim(0) || output.Dim(2) != ho || output.Dim(3) != wo)
            throw new ArgumentException($"Conv2d output {output} should be [{x.Dim(0)}, {weight.Dim(0)}, {ho}, {wo}].");
        if (bias is not null) { CheckCompute(bias, nameof(bias)); if (bias.Length != weight.Dim(0)) throw new ArgumentException($"Conv2d bias {bias} should have {weight.Dim(0)} elements."); }
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Conv2d(x, weight, output, stride));
        using var wide = ReadsHalfWeights ? null : WidenWeight(ref weight);
        if (AnyHalf(x, bias, output) && !HandlesHalfActivations("Conv2d", x, output))
        {
            using var s = Stage();
            Conv2dCore(s.In(x), weight, s.InOptional(bias), s.Out(output), stride, padding);
            s.Commit();
        }
        else Conv2dCore(x, weight, bias, output, stride, padding);
    }

    /// <summary>Implements <see cref="Conv2d"/>.</summary>
    protected abstract void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding);
}
