using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// GroupNorm over x [N, C, ...] with <paramref name="groups"/> groups (biased variance, as
    /// PyTorch), optional per-channel affine, optionally followed by SiLU.
    /// </summary>
    public void GroupNorm(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu = false)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output)); CheckSameShape(x, output, "GroupNorm");
        if (x.Rank < 2) throw new ArgumentException($"GroupNorm needs [N, C, ...], got {x}.");
        int c = x.Dim(1);
        if (groups < 1 || c % groups != 0) throw new ArgumentException($"GroupNorm: {c} channels are not divisible into {groups} groups.");
        CheckVector(gamma, c, "GroupNorm gamma"); CheckVector(beta, c, "GroupNorm beta");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.GroupNorm(x, groups, silu));
        if (AnyHalf(x, gamma, beta, output) && !HandlesHalfActivations("GroupNorm", x, output))
        {
            using var s = Stage();
            GroupNormCore(s.In(x), s.InOptional(gamma), s.InOptional(beta), s.Out(output), groups, eps, silu);
            s.Commit();
        }
        else GroupNormCore(x, gamma, beta, output, groups, eps, silu);
    }

    /// <summary>Implements <see cref="GroupNorm"/>.</summary>
    protected abstract void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu);

    /// <summary>LayerNorm over the last dimension with optional affine (gamma, beta: [D] or null).</summary>
    public void LayerNorm(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output)); CheckSameShape(x, output, "LayerNorm");
        int d = x.Dim(-1);
        CheckVector(gamma, d, "LayerNorm gamma"); CheckVector(beta, d, "LayerNorm beta");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.LayerNorm(x));
        if (AnyHalf(x, gamma, beta, output) && !HandlesHalfActivations("LayerNorm", x, output))
        {
            using var s = Stage();
            LayerNormCore(s.In(x), s.InOptional(gamma), s.InOptional(beta), s.Out(output), eps);
            s.Commit();
        }
        else LayerNormCore(x, gamma, beta, output, eps);
    }

    /// <summary>Implements <see cref="LayerNorm"/>.</summary>
    protected abstract void LayerNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps);

    /// <summary>Softmax over the last dimension.</summary>
    public void Softmax(Tensor x, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output)); CheckSameShape(x, output, "Softmax");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Softmax(x));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Softmax", x, output))
        {
            using var s = Stage();
            SoftmaxCore(s.In(x), s.Out(output));
            s.Commit();
        }
        else SoftmaxCore(x, output);
    }

    /// <summary>Implements <see cref="Softmax"/>.</summary>
    protected abstract void SoftmaxCore(Tensor x, Tensor output);
}
