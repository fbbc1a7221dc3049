using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// diffusers DDIMScheduler: x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - std^2) eps (+ std z when
/// eta > 0), with x0 optionally clipped. The previous timestep is t - N / steps, as diffusers has it.
/// </summary>
public sealed class DdimScheduler : Scheduler
{
    /// <summary>The diffusers class this scheduler implements.</summary>
    public const string DiffusersClass = "DDIMScheduler";

    /// <summary>Registration in <see cref="SchedulerRegistry"/>: VP form with its own (leading) spacing, clip_sample on by default, thresholding; short name <c>ddim</c>.</summary>
    public static SchedulerDescriptor Descriptor { get; } = new()
    {
        ClassNames = [DiffusersClass],
        Create = (c, steps) => new DdimScheduler(c, steps),
        TakesEta = true,
        ReadOptions = (_, _) => SharedOnly.Instance,
        Defaults = new() { TimestepSpacing = "leading", ClipSample = true },
        HasSigmaGrid = false,
        SupportsThresholding = true,
        ShortNames =
        [
            new("ddim", "DDIM (deterministic; --eta G > 0 adds fresh noise every step)",
                c => c.WithClass(DiffusersClass) with { ClipSample = false }) { ListOrder = 60 },
        ],
    };

    private readonly double _finalAlphaCumprod;

    /// <summary>Creates the scheduler for <paramref name="steps"/> steps; <paramref name="eta"/> (default: the config's <see cref="SchedulerConfig.Eta"/>, else 0) 0 is deterministic DDIM.</summary>
    public DdimScheduler(SchedulerConfig config, int steps, double? eta = null) : base(config, steps)
    {
        eta ??= config.Eta ?? 0;
        if (!(eta >= 0)) throw new ArgumentOutOfRangeException(nameof(eta), eta, "DDIM eta must be >= 0.");
        Eta = eta.Value;
        Timesteps = TimestepSpacing.Discrete(config, steps);
        foreach (var t in Timesteps)
            if (t < 0 || t >= config.NumTrainTimesteps)
                throw new SchedulerConfigException($"{config.ClassName}: timestep {t} from timestep_spacing '{config.TimestepSpacing}' and steps_offset {config.StepsOffset} is outside [0, {config.NumTrainTimesteps}).");
        _finalAlphaCumprod = config.SetAlphaToOne ? 1.0 : Training.AlphasCumprod[0];
    }

    /// <summary>Stochasticity: 0 is DDIM, 1 is DDPM-like ancestral sampling.</summary>
    public double Eta { get; }

    /// <inheritdoc />
    public override bool IsStochastic => Eta > 0;

    /// <inheritdoc />
    public override int NoiseDraws => Eta > 0 ? CallCount : 0;

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates { get { var (_, p) = Alphas(CallCount - 1); return (Math.Sqrt(p), Math.Sqrt(1 - p)); } }

    private (double AbarT, double AbarPrev) Alphas(int i)
    {
        int t = (int)Timesteps[i];
        int prev = t - Config.NumTrainTimesteps / InferenceSteps;
        return (Training.AlphasCumprod[t], prev >= 0 ? Training.AlphasCumprod[prev] : _finalAlphaCumprod);
    }

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double abar = Training.AlphasCumprod[(int)Timesteps[i]];
        return new DenoiserCall(i, Timesteps[i], Math.Sqrt((1 - abar) / abar), Math.Sqrt(abar), Math.Sqrt(1 - abar));
    }

    /// <inheritdoc />
    protected override void StepCore(Tensor modelOutput, int i, Tensor sample)
    {
        var (abarT, abarPrev) = Alphas(i);
        double a = Math.Sqrt(abarT), s = Math.Sqrt(1 - abarT);
        var (x0x, x0m) = DataPrediction(a, s);
        var (ex, em) = NoisePrediction(a, s);
        double variance = (1 - abarPrev) / (1 - abarT) * (1 - abarT / abarPrev);
        double std = Eta * Math.Sqrt(variance);
        double cPrev = Math.Sqrt(abarPrev), cDir = Math.Sqrt(Math.Max(1 - abarPrev - std * std, 0));
        // With eta > 0 diffusers draws on every step, also where the variance is 0.
        Tensor? z = Eta > 0 ? DrawNoise(1, sample, i) : null;
        if (Config.ClipSample || Config.Thresholding)
        {
            // x0 is clipped (non-linear), so it is materialised once; eps stays the unclipped estimate.
            var x0 = Scratch(0, sample);
            Term(sample, x0x).Term(modelOutput, x0m).Into(x0);
            LimitX0(x0, 2);
            Term(x0, cPrev).Term(sample, cDir * ex).Term(modelOutput, cDir * em);
        }
        else
            Term(sample, cPrev * x0x + cDir * ex).Term(modelOutput, cPrev * x0m + cDir * em);
        if (z is not null) Term(z, std);
        Into(sample);
    }
}
