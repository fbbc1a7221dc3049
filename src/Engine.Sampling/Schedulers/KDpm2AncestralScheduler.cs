using Engine.Core;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers KDPM2AncestralDiscreteScheduler (k-diffusion sample_dpm_2_ancestral): the ancestral split of each
/// step, sigma_up^2 = sigma_next^2 (sigma^2 - sigma_next^2) / sigma^2 and sigma_down = sqrt(sigma_next^2 - sigma_up^2),
/// a DPM-Solver-2 step from sigma to sigma_down through the midpoint sqrt(sigma sigma_down) (two model calls),
/// then fresh noise of std sigma_up, drawn in the second call. The last step is one Euler call to 0 without noise:
/// 2 steps - 1 calls and steps - 1 draws.
/// </summary>
public sealed class KDpm2AncestralScheduler : KarrasFormScheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "KDPM2AncestralDiscreteScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: Karras form (by class name; no short name of its own).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new KDpm2AncestralScheduler(c, steps),
        ReadOptions = KarrasFormScheduler.Options.Read,
        IsKarrasForm = true,
    };

    private readonly double[] _mid, _up, _down;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps (2 steps - 1 model calls).</summary>
    public KDpm2AncestralScheduler(SchedulerConfig config, int steps) : base(config, steps, roundKarrasTimesteps: true, allowFinalSigmaMin: false)
    {
        if (config.PredictionType == "sample") throw new SchedulerConfigException($"{DiffusersClass}: prediction_type 'sample' is not supported; supported: epsilon, v_prediction.");
        int n = steps;
        _mid = new double[n]; _up = new double[n]; _down = new double[n];
        // In float32 like diffusers (its sigma tensors); the midpoint is the log-lerp of sigma and sigma_down.
        for (int k = 0; k + 1 < n; k++)
        {
            float s = (float)StepSigmas[k], sn = (float)StepSigmas[k + 1];
            float up = MathF.Sqrt(sn * sn * (s * s - sn * sn) / (s * s));
            float down = MathF.Sqrt(sn * sn - up * up);
            float ls = MathF.Log(s), ld = MathF.Log(down);
            _up[k] = up; _down[k] = down; _mid[k] = MathF.Exp(ld - (ld - ls) * 0.5f);
        }
        var ts = new double[2 * n - 1];
        ts[0] = StepTimesteps[0];
        for (int k = 0; k + 1 < n; k++)
        {
            ts[2 * k + 1] = (float)Training.SigmaToT(_mid[k]);
            ts[2 * k + 2] = StepTimesteps[k + 1];
        }
        Timesteps = ts;
        Sigmas = StepSigmas;
    }

    /// <inheritdoc />
    public override bool IsStochastic => CallCount > 1;

    /// <inheritdoc />
    public override int NoiseDraws => CallCount / 2;

    /// <inheritdoc />
    protected override double CallSigma(int i) => i % 2 == 0 ? StepSigmas[i / 2] : _mid[i / 2];

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int k = i / 2;
        double s = StepSigmas[k], mid = _mid[k];
        var saved = Scratch(0, sample);
        if (i % 2 == 0)
        {
            // First call: Euler to the midpoint (to 0 on the last step, where the midpoint is 0).
            var (dx, dm) = Derivative(s);
            double dt = mid - s;
            if (mid > 0) sample.Device.Copy(sample, saved);
            Term(sample, 1 + dt * dx).Term(modelOutput, dt * dm).Into(sample);
        }
        else
        {
            // Second call: the midpoint derivative carries the saved sample to sigma_down, plus sigma_up noise.
            var z = DrawNoise(1, sample, i);
            var (dx, dm) = Derivative(mid);
            double dt = _down[k] - s;
            Term(saved, 1).Term(sample, dt * dx).Term(modelOutput, dt * dm).Term(z, _up[k]).Into(sample);
        }
    }
}
