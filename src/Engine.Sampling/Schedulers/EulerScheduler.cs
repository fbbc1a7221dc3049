using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>diffusers EulerDiscreteScheduler (Karras et al. Algorithm 2 with no churn): x += (x - D) / sigma (sigma_next - sigma).</summary>
public sealed class EulerScheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "EulerDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form (the short name <c>euler</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new EulerScheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
    };

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public EulerScheduler(SchedulerConfig config, int steps) : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: true)
    {
        Timesteps = StepTimesteps;
        Sigmas = StepSigmas;
    }

    /// <inheritdoc />
    protected override double CallSigma(int i) => StepSigmas[i];

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = StepSigmas[i], dt = StepSigmas[i + 1] - s;
        var (dx, dm) = Derivative(s);
        Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm).Into(sample);
    }
}
