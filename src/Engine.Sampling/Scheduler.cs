using Engine.Core;
using Engine.Sampling.Schedules;

namespace Engine.Sampling;

/// <summary>
/// A sampler set up for a number of inference steps: the time grid (host, double), scale_model_input,
/// and a step that turns one model output into the next sample on the device. The loop is per model
/// call, as in diffusers: <c>for i in calls: out = model(scale(x, i), t_i); x = step(out, i, x)</c>.
/// A step computes its scalar coefficients on the host and updates the sample in place with one
/// <see cref="Device.LinearCombination"/> (history slots are written by one more when a multistep
/// method keeps converted outputs). Scratch tensors are allocated on the first step and reused.
/// </summary>
public abstract class Scheduler : IDisposable
{
    private readonly Tensor?[] _scratch = new Tensor?[8];
    private readonly Tensor[] _terms = new Tensor[Device.MaxLinearCombinationTerms];
    private readonly float[] _coeffs = new float[Device.MaxLinearCombinationTerms];
    private int _termCount;

    /// <summary>Creates a scheduler for <paramref name="steps"/> inference steps.</summary>
    protected Scheduler(SchedulerConfig config, int steps)
    {
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), steps, "The number of inference steps must be at least 1.");
        if (steps > config.NumTrainTimesteps && config.Kind?.IsFlowMatching != true)
            throw new ArgumentOutOfRangeException(nameof(steps), steps, $"{steps} inference steps (--steps) cannot exceed the scheduler config's num_train_timesteps ({config.NumTrainTimesteps}).");
        if (config.Thresholding && config.Kind?.SupportsThresholding != true)
            throw new SchedulerConfigException($"{config.ClassName}: thresholding = true is not supported (diffusers has it for DDIM, DDPM, DPM-Solver, DEIS and UniPC).");
        if (config.Eta is not null && config.Kind?.TakesEta != true)
            throw new SchedulerConfigException($"{config.ClassName} takes no eta; eta is an argument of the step of {string.Join(", ", SchedulerRegistry.All.Where(d => d.TakesEta).SelectMany(d => d.ClassNames))}.");
        if (config.CustomTimesteps is { } custom)
        {
            if (config.Kind?.TakesCustomTimesteps != true)
                throw new SchedulerConfigException($"{config.ClassName} takes no custom timesteps; they are supported by {string.Join(", ", SchedulerRegistry.All.Where(d => d.TakesCustomTimesteps).SelectMany(d => d.ClassNames))}.");
            if (custom.Length != steps) throw new SchedulerConfigException($"{config.ClassName}: {custom.Length} custom timesteps given for {steps} steps.");
            for (int k = 0; k < custom.Length; k++)
            {
                if (custom[k] < 0 || custom[k] >= config.NumTrainTimesteps) throw new SchedulerConfigException($"{config.ClassName}: custom timestep {custom[k]} is outside [0, {config.NumTrainTimesteps}).");
                if (k > 0 && custom[k] >= custom[k - 1]) throw new SchedulerConfigException($"{config.ClassName}: custom timesteps must be in descending order ({custom[k - 1]} then {custom[k]}).");
            }
        }
        Config = config;
        InferenceSteps = steps;
        Training = new TrainingSchedule(config);
    }

    /// <summary>The config the scheduler was built from.</summary>
    public SchedulerConfig Config { get; }

    /// <summary>The training schedule (betas, alphas_cumprod, training sigmas).</summary>
    public TrainingSchedule Training { get; }

    /// <summary>Requested number of inference steps.</summary>
    public int InferenceSteps { get; }

    /// <summary>The timestep of every model call, as diffusers' <c>scheduler.timesteps</c>.</summary>
    public double[] Timesteps { get; protected set; } = [];

    /// <summary>diffusers' <c>scheduler.sigmas</c> where the scheduler has them (else null).</summary>
    public double[]? Sigmas { get; protected set; }

    /// <summary>Number of model evaluations in a run.</summary>
    public int CallCount => Timesteps.Length;

    /// <summary>Standard deviation of the initial noise (sigma_max-ish for Karras-form schedulers).</summary>
    public virtual double InitNoiseSigma => 1.0;

    /// <summary>Noise for stochastic steps; required by stochastic configurations.</summary>
    public INoiseSource? Noise { get; set; }

    /// <summary>True when steps draw fresh noise (ancestral / SDE variants, DDIM eta > 0).</summary>
    public virtual bool IsStochastic => false;

    /// <summary>
    /// The standard-normal draws a whole run makes, counted as diffusers counts them (a draw that the step then
    /// multiplies by zero counts and is made): what recorded step noise must hold.
    /// </summary>
    public virtual int NoiseDraws => 0;

    /// <summary>The sample's coordinates before the first step: sample = Alpha x0 + Sigma eps.</summary>
    public (double Alpha, double Sigma) InitialCoordinates => CoordinatesAt(0);

    /// <summary>
    /// The sample's coordinates before call <paramref name="i"/>: sample = Alpha x0 + Sigma eps in the
    /// scheduler's own sample space (before scale_model_input). Noising a clean sample with these is
    /// diffusers' <c>add_noise</c> at that call.
    /// </summary>
    public virtual (double Alpha, double Sigma) CoordinatesAt(int i) { var c = Call(i); return (c.InputAlpha, c.InputSigma); }

    /// <summary>
    /// The first model call of a run: 0, or the call set by <see cref="StartAt"/> for a run that starts
    /// part-way down the schedule (img2img). Multistep history is empty there.
    /// </summary>
    public int StartCall { get; private set; }

    /// <summary>Number of model calls a run makes from <see cref="StartCall"/> on.</summary>
    public int RemainingCalls => CallCount - StartCall;

    /// <summary>
    /// The call where inference step <paramref name="step"/> (0-based, of <see cref="InferenceSteps"/>) begins:
    /// diffusers' <c>step * scheduler.order</c>. Schedulers with several calls per step override it.
    /// </summary>
    public virtual int FirstCallOfStep(int step)
    {
        if ((uint)step >= (uint)InferenceSteps) throw new ArgumentOutOfRangeException(nameof(step), step, $"Step must be in [0, {InferenceSteps}).");
        return step;
    }

    /// <summary>
    /// Makes runs start at call <paramref name="call"/> (diffusers' <c>set_begin_index</c>): the timesteps and
    /// sigmas stay those of the full schedule, the solver starts with an empty history there (as a fresh
    /// diffusers scheduler does), and <see cref="Sampler.Run"/> begins with that call.
    /// </summary>
    public void StartAt(int call)
    {
        if ((uint)call >= (uint)CallCount) throw new ArgumentOutOfRangeException(nameof(call), call, $"Start call must be in [0, {CallCount}).");
        StartCall = call;
    }

    /// <summary>The sample's coordinates after the last step (the exact-solution endpoint).</summary>
    public abstract (double Alpha, double Sigma) FinalCoordinates { get; }

    /// <summary>The model-call description for call <paramref name="i"/>.</summary>
    public abstract DenoiserCall Call(int i);

    /// <summary>scale_model_input factor for call <paramref name="i"/> (1 when the scheduler has none).</summary>
    public virtual double InputScale(int i) => 1.0;

    /// <summary>Advances <paramref name="sample"/> in place given the model output of call <paramref name="i"/>.</summary>
    public void Step(Tensor modelOutput, int i, Tensor sample)
    {
        if ((uint)i >= (uint)CallCount) throw new ArgumentOutOfRangeException(nameof(i), i, $"Call index must be in [0, {CallCount}).");
        if (modelOutput.Length != sample.Length) throw new ArgumentException($"Model output {modelOutput} does not match the sample {sample}.");
        if (i < StartCall) throw new ArgumentOutOfRangeException(nameof(i), i, $"The run starts at call {StartCall}.");
        if (i == StartCall) Reset();
        StepCore(modelOutput, i, sample);
    }

    /// <summary>Implements <see cref="Step"/>.</summary>
    protected abstract void StepCore(Tensor modelOutput, int i, Tensor sample);

    /// <summary>Clears multistep history; called automatically at <see cref="StartCall"/>.</summary>
    protected virtual void Reset() { }

    /// <summary>A reusable scratch tensor shaped like <paramref name="like"/> (allocated once per slot).</summary>
    protected Tensor Scratch(int slot, Tensor like)
    {
        var t = _scratch[slot];
        if (t is null || t.Length != like.Length || !ReferenceEquals(t.Device, like.Device))
        {
            t?.Dispose();
            _scratch[slot] = t = like.Device.Allocate(like.ShapeArray());
        }
        return t;
    }

    /// <summary>Adds a term to the pending linear combination (terms with a zero coefficient are dropped).</summary>
    protected internal Scheduler Term(Tensor t, double c)
    {
        if (c == 0) return this;
        if (!double.IsFinite(c)) throw new InvalidOperationException($"{GetType().Name}: non-finite step coefficient {c}.");
        _terms[_termCount] = t; _coeffs[_termCount] = (float)c; _termCount++;
        return this;
    }

    /// <summary>Writes the pending combination into <paramref name="output"/> (may alias a term) in one kernel.</summary>
    protected internal void Into(Tensor output)
    {
        int n = _termCount;
        _termCount = 0;
        if (n == 0) { output.Device.Fill(output, 0f); return; }
        output.Device.LinearCombination(output, _terms.AsSpan(0, n), _coeffs.AsSpan(0, n));
        Array.Clear(_terms, 0, n);
    }

    /// <summary>Fills a scratch slot with fresh noise for draw <paramref name="draw"/>.</summary>
    protected Tensor DrawNoise(int slot, Tensor like, int draw)
    {
        var noise = Noise ?? throw new InvalidOperationException($"{GetType().Name} draws noise on this configuration: set Scheduler.Noise (for example a PhiloxNoise).");
        var z = Scratch(slot, like);
        noise.Fill(z, draw);
        return z;
    }

    /// <summary>Clamps x to [-r, r] in place as relu(x + r) - relu(x - r) - r, using a scratch slot.</summary>
    protected void Clamp(Tensor x, double r, int scratchSlot)
    {
        var d = x.Device;
        var t = Scratch(scratchSlot, x);
        d.Affine(x, t, 1f, (float)-r);
        d.Activate(t, t, Activation.Relu);
        d.Affine(x, x, 1f, (float)r);
        d.Activate(x, x, Activation.Relu);
        d.LinearCombination(x, [x, t], [1f, -1f]);
        d.Affine(x, x, 1f, (float)-r);
    }

    /// <summary>Clips (clip_sample) or dynamically thresholds (thresholding) a materialised x0 in place.</summary>
    protected void LimitX0(Tensor x0, int scratchSlot)
    {
        if (Config.Thresholding) DynamicThresholding.Apply(x0, Config.DynamicThresholdingRatio, Config.SampleMaxValue);
        else if (Config.ClipSample) Clamp(x0, Config.ClipSampleRange, scratchSlot);
    }

    /// <summary>Coefficients (of sample, of model output) of the x0 estimate for a VP sample x = a x0 + s eps.</summary>
    protected (double X, double M) DataPrediction(double a, double s) => Config.PredictionType switch
    {
        "epsilon" => (1 / a, -s / a),
        "sample" => (0, 1),
        "v_prediction" => (a, -s),
        _ => throw new SchedulerConfigException($"prediction_type '{Config.PredictionType}' is not supported by {Config.ClassName}."),
    };

    /// <summary>Coefficients (of sample, of model output) of the noise estimate for a VP sample x = a x0 + s eps.</summary>
    protected (double X, double M) NoisePrediction(double a, double s) => Config.PredictionType switch
    {
        "epsilon" => (0, 1),
        "sample" => (1 / s, -a / s),
        "v_prediction" => (s, a),
        _ => throw new SchedulerConfigException($"prediction_type '{Config.PredictionType}' is not supported by {Config.ClassName}."),
    };

    /// <summary>Releases the scratch tensors.</summary>
    public void Dispose()
    {
        for (int i = 0; i < _scratch.Length; i++) { _scratch[i]?.Dispose(); _scratch[i] = null; }
        GC.SuppressFinalize(this);
    }
}
