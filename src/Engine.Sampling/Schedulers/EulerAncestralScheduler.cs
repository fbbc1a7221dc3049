using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers EulerAncestralDiscreteScheduler: an Euler step to sigma_down, then fresh noise of
/// std sigma_up, with sigma_up^2 = sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2.
/// </summary>
public sealed class EulerAncestralScheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "EulerAncestralDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form (the short name <c>euler_a</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new EulerAncestralScheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
    };

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public EulerAncestralScheduler(SchedulerConfig config, int steps) : base(config, steps, roundKarrasTimesteps: false, allowFinalSigmaMin: false)
    {
        if (config.PredictionType == "sample") throw new SchedulerConfigException("EulerAncestralDiscreteScheduler: prediction_type 'sample' is not supported; supported: epsilon, v_prediction.");
        Timesteps = StepTimesteps;
        Sigmas = StepSigmas;
    }

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    public override int NoiseDraws => CallCount;

    /// <inheritdoc />
    protected override double CallSigma(int i) => StepSigmas[i];

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        double s = StepSigmas[i], sn = StepSigmas[i + 1];
        double up = Math.Sqrt(sn * sn * (s * s - sn * sn) / (s * s));
        double down = Math.Sqrt(Math.Max(sn * sn - up * up, 0));
        double dt = down - s;
        var (dx, dm) = Derivative(s);
        // diffusers draws on every step, the last too (where sigma_up is 0).
        var z = DrawNoise(0, sample, i);
        Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm).Term(z, up);
        Into(sample);
    }
}
