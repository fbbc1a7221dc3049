using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling.Schedulers;

/// <summary>
/// Base of the exponential-integrator schedulers on VP samples (DPM-Solver, DPM-Solver++, UniPC,
/// DEIS): integer timesteps from n + 1 grid points (or a Karras / exponential / Beta / uniform-lambda
/// sigma grid mapped back to timesteps), sigmas with a final zero or sigma_min, and a history of
/// converted model outputs (data or noise predictions) kept in reused device slots.
/// </summary>
public abstract class VpMultistepScheduler : Scheduler
{
    /// <summary>
    /// Options every multistep solver of the family reads; each class's <c>Options</c> adds its own
    /// and reads them all, in the order errors report them.
    /// </summary>
    public abstract record SolverOptions : SchedulerOptions
    {
        /// <summary>Options with the diffusers defaults.</summary>
        protected SolverOptions() { }

        /// <summary>Reads the options every multistep solver shares: solver_order, lower_order_final and lambda_min_clipped.</summary>
        protected SolverOptions(SchedulerConfigReader r)
        {
            ArgumentNullException.ThrowIfNull(r);
            SolverOrder = r.Int("solver_order", 2);
            LowerOrderFinal = r.Bool("lower_order_final", true);
            LambdaMinClipped = r.Num("lambda_min_clipped", double.NegativeInfinity);
        }

        /// <summary>Order of the multistep update (1-3).</summary>
        public int SolverOrder { get; init; } = 2;

        /// <summary>Lower the order of the last steps when there are fewer than 15 steps.</summary>
        public bool LowerOrderFinal { get; init; } = true;

        /// <summary>Trims grid points whose log-SNR lambda is below this (diffusers: for cosine schedules).</summary>
        public double LambdaMinClipped { get; init; } = double.NegativeInfinity;
    }

    /// <summary>
    /// <see cref="SolverOptions"/> plus diffusers' <c>algorithm_type</c> and <c>solver_type</c>, whose allowed values and
    /// defaults each scheduler's <see cref="SchedulerDefaults"/> give.
    /// </summary>
    public abstract record TypedSolverOptions : SolverOptions
    {
        /// <summary>Options with the diffusers defaults, <paramref name="algorithmType"/> and <paramref name="solverType"/> among them.</summary>
        protected TypedSolverOptions(string algorithmType, string solverType)
        {
            AlgorithmType = algorithmType;
            SolverType = solverType;
        }

        /// <summary>Reads the options; algorithm_type and solver_type take their allowed values from <paramref name="k"/>.</summary>
        protected TypedSolverOptions(SchedulerConfigReader r, SchedulerDefaults k) : base(r)
        {
            ArgumentNullException.ThrowIfNull(k);
            AlgorithmType = r.Choice("algorithm_type", k.AlgorithmType);
            SolverType = r.Choice("solver_type", k.SolverType);
        }

        /// <summary>diffusers' algorithm_type (the values the scheduler's options list).</summary>
        public string AlgorithmType { get; init; }

        /// <summary>diffusers' solver_type (the values the scheduler's options list).</summary>
        public string SolverType { get; init; }
    }

    // Four ring slots: up to three entries are read while the fourth receives the newest conversion.
    private const int Ring = 4;
    private readonly Tensor?[] _history = new Tensor?[Ring];
    private readonly double[] _historyLambda = new double[Ring];
    private readonly double[] _historySigma = new double[Ring];
    private int _historyCount, _next;

    /// <summary>Builds the grid; <paramref name="finalSigmaMinAlways"/> for DEIS, whose grid always ends at sigma_min.</summary>
    protected VpMultistepScheduler(SchedulerConfig config, SolverOptions options, int steps, bool finalSigmaMinAlways = false, bool linspaceOnly = false) : base(config, steps)
    {
        Solver = options;
        var tr = Training;
        int N = config.NumTrainTimesteps;
        // lambda_min_clipped trims the high-noise end of the grid (diffusers: for cosine schedules).
        int clipped = 0;
        if (!double.IsNegativeInfinity(options.LambdaMinClipped))
            for (int t = N - 1; t >= 0; t--)
            {
                double a = tr.AlphasCumprod[t];
                if (0.5 * Math.Log(a) - 0.5 * Math.Log(1 - a) < options.LambdaMinClipped) clipped++; else break;
            }
        double[] ts = linspaceOnly
            ? SigmaGrids.Linspace(0, N - 1 - clipped, steps + 1).Select(v => Math.Round(v)).Reverse().Take(steps).ToArray()
            : TimestepSpacing.Multistep(config, steps, N - clipped);
        foreach (var t in ts)
            if (t < 0 || t > N - 1) throw new SchedulerConfigException($"{config.ClassName}: timestep {t} from timestep_spacing '{config.TimestepSpacing}' and steps_offset {config.StepsOffset} is outside [0, {N - 1}].");
        double sMin = tr.Sigmas[0], sMax = tr.Sigmas[N - 1];
        double[] sig;
        if (config.UseKarrasSigmas || config.UseLuLambdas)
        {
            sig = config.UseKarrasSigmas ? SigmaGrids.Karras(sMin, sMax, steps) : SigmaGrids.UniformLambda(sMin, sMax, steps);
            ts = sig.Select(s => Math.Round(tr.SigmaToT(s))).ToArray();
        }
        else if (config.UseExponentialSigmas || config.UseBetaSigmas)
        {
            sig = config.UseExponentialSigmas ? SigmaGrids.Exponential(sMin, sMax, steps) : SigmaGrids.Beta(sMin, sMax, steps, config.BetaSigmasAlpha, config.BetaSigmasBeta);
            ts = sig.Select(s => tr.SigmaToT(s)).ToArray();
        }
        else sig = ts.Select(t => TrainingSchedule.Interp(t, tr.Sigmas)).ToArray();
        double last = finalSigmaMinAlways || config.FinalSigmasType == "sigma_min" ? sMin : 0;
        Timesteps = ts;
        Sigmas = sig.Append(last).Select(s => (double)(float)s).ToArray();
    }

    /// <summary>The solver options of the config (the class's own <c>Options</c>).</summary>
    protected SolverOptions Solver { get; }

    /// <summary>Karras sigma at grid point i (i = CallCount is the final noise level).</summary>
    protected double SigmaAt(int i) => Sigmas![i];

    /// <summary>VP (alpha, sigma) at grid point i.</summary>
    protected (double A, double S) AlphaSigmaAt(int i) => TrainingSchedule.AlphaSigma(SigmaAt(i));

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => AlphaSigmaAt(CallCount);

    /// <summary>lambda = log(alpha / sigma) at grid point i (+inf at sigma 0).</summary>
    protected double LambdaAt(int i) { var (a, s) = AlphaSigmaAt(i); return Math.Log(a) - Math.Log(s); }

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        var (a, s) = AlphaSigmaAt(i);
        return new DenoiserCall(i, Timesteps[i], SigmaAt(i), a, s);
    }

    /// <inheritdoc />
    protected override void Reset() { _historyCount = 0; _next = 0; }

    /// <summary>Number of converted outputs in the history (at most 3).</summary>
    protected int HistoryCount => _historyCount;

    /// <summary>The k-th newest converted output (0 = newest) with its lambda and sigma.</summary>
    protected (Tensor T, double Lambda, double Sigma) History(int k)
    {
        int slot = ((_next - 1 - k) % Ring + Ring) % Ring;
        return (_history[slot]!, _historyLambda[slot], _historySigma[slot]);
    }

    /// <summary>
    /// Converts the model output at grid point i into a data prediction (<paramref name="data"/>) or a
    /// noise prediction and pushes it as the newest history entry (one linear combination).
    /// </summary>
    protected Tensor PushConverted(Tensor modelOutput, int i, Tensor sample, bool data)
    {
        var slot = ConvertIntoNextSlot(modelOutput, i, sample, data);
        CommitNextSlot(i);
        return slot;
    }

    /// <summary>Converts the model output into the slot the next history entry will use, without committing it.</summary>
    protected Tensor ConvertIntoNextSlot(Tensor modelOutput, int i, Tensor sample, bool data)
    {
        var (a, s) = AlphaSigmaAt(i);
        var slot = Scratch(3 + _next, sample);
        if (Config.Thresholding)
        {
            // diffusers thresholds x0 and derives the noise prediction from the thresholded x0.
            var (x0x, x0m) = DataPrediction(a, s);
            Term(sample, x0x).Term(modelOutput, x0m).Into(slot);
            DynamicThresholding.Apply(slot, Config.DynamicThresholdingRatio, Config.SampleMaxValue);
            if (!data) Term(sample, 1 / s).Term(slot, -a / s).Into(slot);
        }
        else
        {
            var (cx, cm) = data ? DataPrediction(a, s) : NoisePrediction(a, s);
            Term(sample, cx).Term(modelOutput, cm).Into(slot);
        }
        _history[_next] = slot;
        return slot;
    }

    /// <summary>Makes the slot filled by <see cref="ConvertIntoNextSlot"/> the newest history entry (grid point i).</summary>
    protected void CommitNextSlot(int i)
    {
        _historyLambda[_next] = LambdaAt(i);
        _historySigma[_next] = SigmaAt(i);
        _next = (_next + 1) % Ring;
        _historyCount = Math.Min(_historyCount + 1, 3);
    }

    /// <summary>
    /// The highest order up to <paramref name="wanted"/> whose history points have distinct lambdas
    /// (a repeated noise level would divide by zero in the divided differences).
    /// </summary>
    protected int UsableOrder(int wanted)
    {
        int order = Math.Min(wanted, _historyCount);
        for (int k = 1; k < order; k++)
            if (!(History(k - 1).Lambda != History(k).Lambda)) return k;
        return order;
    }
}
