using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers KDPM2DiscreteScheduler (k-diffusion sample_dpm_2): Euler to the geometric midpoint
/// sigma_mid = sqrt(sigma sigma_next), evaluate there, then a full step with the midpoint derivative.
/// Calls alternate: even = first stage at sigma_k, odd = midpoint stage; the last step is Euler to 0.
/// </summary>
public sealed class KDpm2Scheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "KDPM2DiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form (the short name <c>dpm_2</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new KDpm2Scheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
    };

    private readonly double[] _mid;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps (2 steps - 1 model calls); <paramref name="endAtSigmaMin"/> (beyond diffusers) stops at sigma_min instead of 0.</summary>
    public KDpm2Scheduler(SchedulerConfig config, int steps, bool endAtSigmaMin = false) : base(config, steps, roundKarrasTimesteps: true, allowFinalSigmaMin: false, endAtSigmaMin)
    {
        if (config.PredictionType == "sample") throw new SchedulerConfigException("KDPM2DiscreteScheduler: prediction_type 'sample' is not supported; supported: epsilon, v_prediction.");
        int n = steps;
        // Midpoints in float32 like diffusers (log-lerp of float32 sigmas).
        _mid = Enumerable.Range(0, n).Select(k => (double)MathF.Exp(0.5f * (MathF.Log((float)StepSigmas[k]) + MathF.Log((float)StepSigmas[k + 1])))).ToArray();
        var ts = new double[2 * n - 1];
        ts[0] = StepTimesteps[0];
        for (int k = 0; k + 1 < n; k++)
        {
            ts[2 * k + 1] = (float)Training.SigmaToT(_mid[k]);
            ts[2 * k + 2] = StepTimesteps[k + 1];
        }
        // Ending at sigma_min (> 0), the last step gets its midpoint call too.
        if (StepSigmas[n] > 0) ts = ts.Append((float)Training.SigmaToT(_mid[n - 1])).ToArray();
        Timesteps = ts;
        Sigmas = Enumerable.Range(0, 2 * n + 2).Select(i => StepSigmas[Math.Min((i + 1) / 2, n)]).ToArray();
    }

    /// <inheritdoc />
    public override int FirstCallOfStep(int step) => 2 * base.FirstCallOfStep(step); // two calls per step (diffusers' order 2)

    /// <inheritdoc />
    protected override double CallSigma(int i) => i % 2 == 0 ? StepSigmas[i / 2] : _mid[i / 2];

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int k = i / 2;
        double s = StepSigmas[k], sn = StepSigmas[k + 1], mid = _mid[k];
        var saved = Scratch(0, sample);
        if (i % 2 == 0)
        {
            var (dx, dm) = Derivative(s);
            double dt = mid - s;
            if (sn > 0) sample.Device.Copy(sample, saved);
            Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm).Into(sample);
        }
        else
        {
            var (dx, dm) = Derivative(mid);
            double dt = sn - s;
            Term(saved, 1).Term(sample, dt * dx).Term(modelOutput, dt * dm).Into(sample);
        }
    }
}
