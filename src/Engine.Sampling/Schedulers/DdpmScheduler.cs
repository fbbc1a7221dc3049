using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DDPMScheduler (ancestral sampling, Ho et al. 2020): posterior mean of q(x_prev | x_t, x0)
/// with x0 optionally clipped, plus fixed_small / fixed_small_log / fixed_large variance noise for t > 0.
/// </summary>
public sealed class DdpmScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "DDPMScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: VP form with its own (leading) spacing, clip_sample on and variance_type fixed_small by default, thresholding (the short name <c>ddpm</c> is ComfyUI's sampler, see KDiffusion).</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new DdpmScheduler(c, steps),
        ReadOptions = (r, _) => new Options { VarianceType = r.Choice("variance_type", "fixed_small", "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "none") },
        Defaults = new() { TimestepSpacing = "leading", ClipSample = true },
        HasSigmaGrid = false,
        SupportsThresholding = true,
        TakesCustomTimesteps = true,
    };

    /// <summary>DDPM's own option: the posterior variance.</summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>fixed_small, fixed_small_log, fixed_large, fixed_large_log (the last and none are rejected by the scheduler).</summary>
        public string VarianceType { get; init; } = "fixed_small";
    }


    private readonly string _varianceType;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps.</summary>
    public DdpmScheduler(SchedulerConfig config, int steps) : base(config, steps)
    {
        _varianceType = Descriptor.OptionsOf<Options>(config).VarianceType;
        if (_varianceType is not ("fixed_small" or "fixed_small_log" or "fixed_large"))
            throw new SchedulerConfigException($"DDPMScheduler: variance_type '{_varianceType}' is not supported; supported: fixed_small, fixed_small_log, fixed_large.");
        Timesteps = config.CustomTimesteps is { } custom ? custom.Select(t => (double)t).ToArray() : TimestepSpacing.Discrete(config, steps);
        foreach (var t in Timesteps)
            if (t < 0 || t > config.NumTrainTimesteps - 1) throw new SchedulerConfigException($"DDPMScheduler: timestep {t} from timestep_spacing '{config.TimestepSpacing}' and steps_offset {config.StepsOffset} is outside [0, {config.NumTrainTimesteps - 1}].");
    }

    /// <inheritdoc />
    public override bool IsStochastic => true;

    /// <inheritdoc />
    public override int NoiseDraws => Timesteps.Count(t => t > 0);

    /// <summary>
    /// diffusers' previous_timestep: the next custom timestep (-1 after the last), else t - N / steps, which is not
    /// the next scheduled timestep when trailing or linspace spacing does not divide N (and may be negative).
    /// </summary>
    private int PreviousTimestep(int i) => Config.CustomTimesteps is not null
        ? i + 1 < CallCount ? (int)Timesteps[i + 1] : -1
        : (int)Timesteps[i] - Config.NumTrainTimesteps / InferenceSteps;

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => (1, 0);

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        return new DenoiserCall(i, Timesteps[i], Math.Sqrt((1 - abar) / abar), Math.Sqrt(abar), Math.Sqrt(1 - abar));
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        int t = (int)Timesteps[i];
        int prev = PreviousTimestep(i);
        double abar = Training.AlphasCumprod[t], abarPrev = prev >= 0 ? Training.AlphasCumprod[prev] : 1.0;
        double alpha = abar / abarPrev, beta = 1 - alpha;
        double cx0 = Math.Sqrt(abarPrev) * beta / (1 - abar);
        double cs = Math.Sqrt(alpha) * (1 - abarPrev) / (1 - abar);
        var (x0x, x0m) = DataPrediction(Math.Sqrt(abar), Math.Sqrt(1 - abar));
        double variance = Math.Max((1 - abarPrev) / (1 - abar) * beta, 1e-20);
        // fixed_small_log applies the clamped variance as exp(0.5 log v), as diffusers does.
        double std = t > 0 ? _varianceType switch { "fixed_large" => Math.Sqrt(beta), "fixed_small_log" => Math.Exp(0.5 * Math.Log(variance)), _ => Math.Sqrt(variance) } : 0;
        Tensor? z = t > 0 ? DrawNoise(1, sample, i) : null;
        if (Config.ClipSample || Config.Thresholding)
        {
            var x0 = Scratch(0, sample);
            Term(sample, x0x).Term(modelOutput, x0m).Into(x0);
            LimitX0(x0, 2);
            Term(x0, cx0).Term(sample, cs);
        }
        else Term(sample, cs + cx0 * x0x).Term(modelOutput, cx0 * x0m);
        if (z is not null) Term(z, std);
        Into(sample);
    }
}
