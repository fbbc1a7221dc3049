using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// Base of the k-diffusion style schedulers (Euler, Euler ancestral, Heun, LMS, KDPM2): the sample is
/// x~ = x0 + sigma eps, the model sees x~ / sqrt(sigma^2 + 1), and the grid is diffusers' sigma grid
/// (linear interpolation of training sigmas at float timesteps, or Karras / exponential / Beta sigmas
/// mapped back to fractional timesteps), stored in float32 like diffusers.
/// </summary>
public abstract class KarrasFormScheduler : Scheduler
{
    /// <summary>
    /// Options of the family: diffusers' EulerDiscreteScheduler arguments timestep_type and
    /// interpolation_type, which the engine honours for every Karras-form class.
    /// </summary>
    public sealed record Options : SchedulerOptions
    {
        /// <summary>discrete (model sees timesteps) or continuous (model sees 0.25 log sigma).</summary>
        public string TimestepType { get; init; } = "discrete";

        /// <summary>Interpolation of sigmas between timesteps (linear; diffusers' log_linear is not supported).</summary>
        public string InterpolationType { get; init; } = "linear";

        /// <summary>Reads the family's keys (<see cref="SchedulerDescriptor.ReadOptions"/>).</summary>
        public static SchedulerOptions Read(SchedulerConfigReader r, SchedulerDefaults k) => new Options
        {
            TimestepType = r.Choice("timestep_type", "discrete", "discrete", "continuous"),
            InterpolationType = r.Choice("interpolation_type", "linear", "linear"),
        };

        /// <summary>The options of <paramref name="c"/>, re-read from its keys when its class has others.</summary>
        internal static Options Of(SchedulerConfig c) => c.Options as Options ?? (Options)Read(new SchedulerConfigReader(c.Raw, c.ClassName), new());
    }

    /// <summary>Builds the base grid: <see cref="StepSigmas"/> (n + 1, ending in 0 or sigma_min) and <see cref="StepTimesteps"/> (n).</summary>
    protected KarrasFormScheduler(SchedulerConfig config, int steps, bool roundKarrasTimesteps, bool allowFinalSigmaMin, bool endAtSigmaMin = false) : base(config, steps)
    {
        if (config.FinalSigmasType == "sigma_min" && !allowFinalSigmaMin && !endAtSigmaMin)
            throw new SchedulerConfigException($"{config.ClassName}: final_sigmas_type 'sigma_min' is not supported; supported: zero.");
        var ts = TimestepSpacing.Karras(config, steps);
        foreach (var t in ts)
            if (t < 0 || t > config.NumTrainTimesteps - 1)
                throw new SchedulerConfigException($"{config.ClassName}: timestep {t} from timestep_spacing '{config.TimestepSpacing}' and steps_offset {config.StepsOffset} is outside [0, {config.NumTrainTimesteps - 1}].");
        var sig = ts.Select(t => TrainingSchedule.Interp(t, Training.Sigmas)).ToArray();
        double sMin = config.SigmaMin ?? sig[^1], sMax = config.SigmaMax ?? sig[0];
        double[]? grid = config.UseKarrasSigmas ? SigmaGrids.Karras(sMin, sMax, steps)
            : config.UseExponentialSigmas ? SigmaGrids.Exponential(sMin, sMax, steps)
            : config.UseBetaSigmas ? SigmaGrids.Beta(sMin, sMax, steps, config.BetaSigmasAlpha, config.BetaSigmasBeta)
            : null;
        if (grid is not null)
        {
            sig = grid;
            ts = grid.Select(s => Training.SigmaToT(s)).Select(t => config.UseKarrasSigmas && roundKarrasTimesteps ? Math.Round(t) : t).ToArray();
        }
        double last = config.FinalSigmasType == "sigma_min" || endAtSigmaMin ? Training.Sigmas[0] : 0;
        StepSigmas = sig.Append(last).Select(s => (double)(float)s).ToArray();
        if (Options.Of(config).TimestepType == "continuous") ts = StepSigmas.Take(steps).Select(s => (double)(float)(0.25 * Math.Log(s))).ToArray();
        StepTimesteps = ts.Select(t => (double)(float)t).ToArray();
    }

    /// <summary>Sigma at each step boundary: n + 1 values, descending.</summary>
    protected double[] StepSigmas { get; }

    /// <summary>Model timestep of each step's first evaluation: n values.</summary>
    protected double[] StepTimesteps { get; }

    /// <inheritdoc />
    public override (double Alpha, double Sigma) CoordinatesAt(int i) => (1, CallSigma(i));

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => (1, StepSigmas[^1]);

    /// <inheritdoc />
    public override double InitNoiseSigma
    {
        get
        {
            double max = StepSigmas.Max();
            return Config.TimestepSpacing is "linspace" or "trailing" ? max : Math.Sqrt(max * max + 1);
        }
    }

    /// <summary>The sigma the model input of call i is at.</summary>
    protected abstract double CallSigma(int i);

    /// <inheritdoc />
    public override double InputScale(int i) { double s = CallSigma(i); return 1 / Math.Sqrt(s * s + 1); }

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double s = CallSigma(i);
        var (a, b) = TrainingSchedule.AlphaSigma(s);
        return new DenoiserCall(i, Timesteps[i], s, a, b);
    }

    /// <summary>Coefficients (of x~, of model output) of the denoised estimate at Karras sigma <paramref name="sigma"/>.</summary>
    protected (double X, double M) Denoised(double sigma) => Config.PredictionType switch
    {
        "epsilon" => (1, -sigma),
        "v_prediction" => (1 / (sigma * sigma + 1), -sigma / Math.Sqrt(sigma * sigma + 1)),
        "sample" => (0, 1),
        _ => throw new SchedulerConfigException($"prediction_type '{Config.PredictionType}' is not supported by {Config.ClassName}."),
    };

    /// <summary>Coefficients (of x~, of model output) of the ODE derivative (x~ - D) / sigma.</summary>
    protected (double X, double M) Derivative(double sigma)
    {
        var (x, m) = Denoised(sigma);
        return ((1 - x) / sigma, -m / sigma);
    }
}
