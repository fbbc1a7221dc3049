using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers HeunDiscreteScheduler (Karras et al. Algorithm 1, no churn): per step an Euler predictor
/// and a trapezoidal corrector, two model calls; the last step (to sigma 0) is a plain Euler step.
/// Calls alternate: even = predictor at sigma_k, odd = corrector at sigma_{k+1}.
/// </summary>
public sealed class HeunScheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "HeunDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form (the short name <c>heun</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new HeunScheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
    };

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps (2 steps - 1 model calls); <paramref name="endAtSigmaMin"/> (beyond diffusers) stops at sigma_min instead of 0.</summary>
    public HeunScheduler(SchedulerConfig config, int steps, bool endAtSigmaMin = false) : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: false, endAtSigmaMin)
    {
        int n = steps;
        // Ending at sigma_min (> 0), the last step gets its corrector call too.
        int calls = StepSigmas[n] > 0 ? 2 * n : 2 * n - 1;
        var ts = StepTimesteps.Append((float)Training.SigmaToT(StepSigmas[n])).ToArray();
        Timesteps = Enumerable.Range(0, calls).Select(i => ts[(i + 1) / 2]).ToArray();
        Sigmas = Enumerable.Range(0, 2 * n).Select(i => StepSigmas[(i + 1) / 2]).ToArray();
    }

    /// <inheritdoc />
    public override int FirstCallOfStep(int step) => 2 * base.FirstCallOfStep(step); // two calls per step (diffusers' order 2)

    /// <inheritdoc />
    protected override double CallSigma(int i) => StepSigmas[(i + 1) / 2];

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int k = i / 2;
        double s = StepSigmas[k], sn = StepSigmas[k + 1], dt = sn - s;
        var saved = Scratch(0, sample);
        var d1 = Scratch(1, sample);
        if (i % 2 == 0)
        {
            var (dx, dm) = Derivative(s);
            if (sn > 0)
            {
                Term(sample, dx).Term(modelOutput, dm).Into(d1);
                sample.Device.Copy(sample, saved);
            }
            Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm).Into(sample);
        }
        else
        {
            var (dx, dm) = Derivative(sn);
            Term(saved, 1).Term(d1, dt / 2).Term(sample, dt / 2 * dx).Term(modelOutput, dt / 2 * dm).Into(sample);
        }
    }
}
