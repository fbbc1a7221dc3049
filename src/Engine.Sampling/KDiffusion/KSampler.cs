using Engine.Core;
using Engine.Sampling.Schedulers;

namespace Engine.Sampling.KDiffusion;

/// <summary>
/// Base of the ComfyUI / k-diffusion samplers. The sample lives in variance-exploding coordinates
/// x = x0 + sigma eps and starts as noise * sqrt(1 + sigma_max^2); each model call at noise level sigma
/// sees x / sqrt(sigma^2 + 1) (the continuous sigma) but is conditioned on the nearest integer training
/// timestep, and its output becomes the denoised estimate D = x - sigma eps (or the v / sample form).
/// A sampler lists its model calls up front (<see cref="Plan"/>), then updates the sample per call with
/// <see cref="Scheduler.Term"/>/<see cref="Scheduler.Into"/> on the device.
/// </summary>
public abstract class KSampler : Scheduler
{
    private KCall[] _plan = [];
    private int _draws;

    /// <summary>One model call: the grid step it belongs to, its stage within the step and its sigma.</summary>
    /// <param name="Step">Index i of the step from Grid[i] to Grid[i + 1].</param>
    /// <param name="Stage">0 for the call at Grid[i], 1 for a second-stage call.</param>
    /// <param name="Sigma">The noise level the sampler evaluates the denoiser at.</param>
    protected readonly record struct KCall(int Step, int Stage, double Sigma);

    /// <summary>Creates the sampler on <paramref name="grid"/> (descending sigmas, final 0 included) of the config's training schedule.</summary>
    protected KSampler(SchedulerConfig config, double[] grid, string name) : base(Accepted(config, name), Math.Max(grid.Length - 1, 1))
    {
        if (grid.Length < 2) throw new ArgumentException($"{name}: the sigma grid needs at least two values.", nameof(grid));
        if (config.Kind?.IsFlowMatching == true)
            throw new SchedulerConfigException($"{name}: ComfyUI's sampler names need a discrete training schedule; {config.ClassName} is flow matching (use flow_euler).");
        if (config.PredictionType is not ("epsilon" or "v_prediction" or "sample"))
            throw new SchedulerConfigException($"{name}: prediction_type '{config.PredictionType}' is not supported; supported: epsilon, v_prediction, sample.");
        Name = name;
        Grid = grid;
        Sigmas = grid;
    }

    // Checked before the base constructor, which would name the model's class instead: the grid comes from the
    // schedule name and the update rules run with k-diffusion's defaults.
    private static SchedulerConfig Accepted(SchedulerConfig config, string name)
    {
        if (config.Eta is not null)
            throw new SchedulerConfigException($"ComfyUI's {name} takes no eta here (k-diffusion's default is used); eta is for diffusers' DDIM and TCD.");
        if (config.CustomTimesteps is not null)
            throw new SchedulerConfigException($"ComfyUI's {name} takes no custom timesteps; its grid comes from the schedule name.");
        return config;
    }

    /// <summary>The sampler's ComfyUI name.</summary>
    public string Name { get; }

    /// <summary>Sigma at each step boundary, descending, ending in 0.</summary>
    protected double[] Grid { get; }

    /// <summary>Number of grid steps.</summary>
    protected int StepCount => Grid.Length - 1;

    /// <inheritdoc />
    public override double InitNoiseSigma => Math.Sqrt(1 + Grid[0] * Grid[0]);

    /// <summary>Before call <paramref name="i"/> the sample is x0 + sigma eps at that call's sigma (variance exploding).</summary>
    public override (double Alpha, double Sigma) CoordinatesAt(int i) => (1, _plan[i].Sigma);

    /// <summary>The first call of grid step <paramref name="step"/> (second-stage calls belong to the step they complete).</summary>
    public override int FirstCallOfStep(int step)
    {
        if ((uint)step >= (uint)StepCount) throw new ArgumentOutOfRangeException(nameof(step), step, $"Step must be in [0, {StepCount}).");
        return Array.FindIndex(_plan, c => c.Step == step && c.Stage == 0);
    }

    /// <inheritdoc />
    public override (double Alpha, double Sigma) FinalCoordinates => (1, Grid[^1]);

    /// <summary>Sets the model calls of a run; their timesteps are the nearest integer training timesteps.</summary>
    protected void Plan(IEnumerable<KCall> calls)
    {
        _plan = calls.ToArray();
        Timesteps = _plan.Select(c => (double)ComfySchedules.NearestTimestep(Training, c.Sigma)).ToArray();
    }

    /// <summary>
    /// Draws a whole run makes: <see cref="DrawsAt"/> summed over the planned calls, so recorded step noise is
    /// checked before sampling (<see cref="RecordedNoise.Require"/>) rather than running out mid-run.
    /// </summary>
    public override int NoiseDraws => _plan.Sum(DrawsAt);

    /// <summary>The standard-normal draws model call <paramref name="call"/>'s update makes (0 for deterministic samplers).</summary>
    protected virtual int DrawsAt(KCall call) => 0;

    /// <summary>Whether the grid step of <paramref name="call"/> ends above sigma 0 (where ancestral and SDE updates draw).</summary>
    protected bool EndsAboveZero(KCall call) => Grid[call.Step + 1] > 0;

    /// <summary>The call plan entry of model call <paramref name="i"/>.</summary>
    protected KCall PlanOf(int i) => _plan[i];

    /// <summary>One call per step at its starting sigma (first-order and multistep samplers).</summary>
    protected IEnumerable<KCall> OneCallPerStep() => Enumerable.Range(0, StepCount).Select(i => new KCall(i, 0, Grid[i]));

    /// <inheritdoc />
    public override double InputScale(int i) { double s = _plan[i].Sigma; return 1 / Math.Sqrt(s * s + 1); }

    /// <inheritdoc />
    public override DenoiserCall Call(int i)
    {
        double s = _plan[i].Sigma;
        double a = 1 / Math.Sqrt(s * s + 1);
        return new DenoiserCall(i, Timesteps[i], s, a, s * a);
    }

    /// <inheritdoc />
    protected override void Reset() { _draws = 0; ResetHistory(); }

    /// <summary>Clears the sampler's history at the start of a run.</summary>
    protected virtual void ResetHistory() { }

    /// <summary>Coefficients (of x, of the model output) of the denoised estimate at <paramref name="sigma"/>.</summary>
    protected (double X, double M) DenoisedCoefficients(double sigma) => Config.PredictionType switch
    {
        "epsilon" => (1, -sigma),
        "v_prediction" => (1 / (sigma * sigma + 1), -sigma / Math.Sqrt(sigma * sigma + 1)),
        _ => (0, 1),
    };

    /// <summary>Writes the denoised estimate of the model output at <paramref name="sigma"/> into scratch slot <paramref name="slot"/>.</summary>
    protected Tensor Denoise(int slot, Tensor modelOutput, Tensor x, double sigma)
    {
        var d = Scratch(slot, x);
        var (cx, cm) = DenoisedCoefficients(sigma);
        Term(x, cx).Term(modelOutput, cm).Into(d);
        return d;
    }

    /// <summary>Copies <paramref name="x"/> into scratch slot <paramref name="slot"/>.</summary>
    protected Tensor Save(int slot, Tensor x)
    {
        var t = Scratch(slot, x);
        Term(x, 1).Into(t);
        return t;
    }

    /// <summary>The next standard-normal draw of the run (draws are numbered in call order), in scratch slot <paramref name="slot"/>.</summary>
    protected Tensor Draw(int slot, Tensor like) => DrawNoise(slot, like, _draws++);

    /// <summary>k-diffusion's ancestral split of a step from <paramref name="sigma"/> to <paramref name="next"/> (eta 1): (sigma_down, sigma_up).</summary>
    protected static (double Down, double Up) Ancestral(double sigma, double next)
    {
        if (next == 0) return (0, 0);
        double up = Math.Min(next, Math.Sqrt(next * next * (sigma * sigma - next * next) / (sigma * sigma)));
        return (Math.Sqrt(next * next - up * up), up);
    }

    /// <summary>exp(x) - 1 without cancellation.</summary>
    protected static double Expm1(double x) => ExpMath.Expm1(x);
}
