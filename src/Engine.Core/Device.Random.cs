using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// Fills output [N, ...] with standard normal noise from Philox keyed by (seed, sample index,
    /// step): row i is sample <paramref name="firstSampleIndex"/> + i, so a sample's noise does not
    /// depend on the batch it is drawn in.
    /// </summary>
    public void RandomNormal(Tensor output, ulong seed, int firstSampleIndex, int step)
    {
        CheckCompute(output, nameof(output));
        if (output.Rank < 1 || firstSampleIndex < 0 || step < 0) throw new ArgumentException($"RandomNormal: bad output {output}, sample index {firstSampleIndex} or step {step}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Random(output));
        if (AnyHalf(output) && !HandlesHalfActivations("RandomNormal", output))
        {
            using var s = Stage();
            RandomNormalCore(s.Out(output), seed, firstSampleIndex, step);
            s.Commit();
        }
        else RandomNormalCore(output, seed, firstSampleIndex, step);
    }

    /// <summary>Implements <see cref="RandomNormal"/>.</summary>
    protected abstract void RandomNormalCore(Tensor output, ulong seed, int firstSampleIndex, int step);
}
