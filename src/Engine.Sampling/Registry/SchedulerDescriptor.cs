namespace Engine.Sampling;

/// <summary>
/// Everything the engine knows about one scheduler besides its step: the diffusers class name(s) it
/// answers to, the config defaults and allowed values that differ from the shared ones, its own
/// validation rules and the short sampler names built on it. Each scheduler file declares one as
/// <c>public static SchedulerDescriptor Descriptor</c>; <see cref="SchedulerRegistry"/> lists them.
/// </summary>
public sealed class SchedulerDescriptor
{
    /// <summary>
    /// The diffusers <c>_class_name</c> values this scheduler implements. Empty for an engine sampler
    /// without a diffusers class, which only contributes <see cref="ShortNames"/> built on another class's config.
    /// </summary>
    public IReadOnlyList<string> ClassNames { get; init; } = [];

    /// <summary>Builds the scheduler for a parsed config and a number of inference steps (null for engine samplers).</summary>
    public Func<SchedulerConfig, int, Scheduler>? Create { get; init; }

    /// <summary>Defaults and allowed values of the fields whose meaning differs between classes.</summary>
    public SchedulerDefaults Defaults { get; init; } = new();

    /// <summary>
    /// Parses this class's own options (<see cref="SchedulerConfig.Options"/>) from a config's keys;
    /// string choices take their allowed values from the given defaults (null for engine samplers).
    /// A file is checked by every class's reader, with the file class's allowed values, so a malformed
    /// key fails whichever class reads it (a short name may switch to that class later).
    /// </summary>
    public Func<SchedulerConfigReader, SchedulerDefaults, SchedulerOptions>? ReadOptions { get; init; }

    /// <summary>
    /// The options of <paramref name="config"/> as this class's <typeparamref name="T"/>; when the config
    /// belongs to another class (a scheduler built directly on it), they are read from its keys.
    /// </summary>
    public T OptionsOf<T>(SchedulerConfig config) where T : SchedulerOptions
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Options is T own) return own;
        var read = ReadOptions ?? throw new InvalidOperationException("This scheduler has no options of its own.");
        return (T)read(new SchedulerConfigReader(config.Raw, config.ClassName), Defaults);
    }

    /// <summary>
    /// Works on the Karras sample x = x0 + sigma eps (model input scaled by 1/sqrt(sigma^2+1)); the
    /// training schedule then keeps a tiny last alpha_cumprod under rescale_betas_zero_snr.
    /// </summary>
    public bool IsKarrasForm { get; init; }

    /// <summary>A flow-matching scheduler: no discrete training schedule, so steps are not bounded by num_train_timesteps.</summary>
    public bool IsFlowMatching { get; init; }

    /// <summary>Offers the Karras, exponential and beta sigma grids (false: its own timestep spacing only).</summary>
    public bool HasSigmaGrid { get; init; } = true;

    /// <summary>Supports dynamic thresholding (diffusers has it for DDIM, DDPM, DPM-Solver, DEIS and UniPC).</summary>
    public bool SupportsThresholding { get; init; }

    /// <summary>Supports use_lu_lambdas (uniform steps in log-SNR).</summary>
    public bool SupportsLuLambdas { get; init; }

    /// <summary>Its step takes diffusers' <c>eta</c> argument (<see cref="SchedulerConfig.Eta"/>).</summary>
    public bool TakesEta { get; init; }

    /// <summary>Its set_timesteps takes custom timesteps (<see cref="SchedulerConfig.CustomTimesteps"/>).</summary>
    public bool TakesCustomTimesteps { get; init; }

    /// <summary>The largest solver_order accepted.</summary>
    public int MaxSolverOrder { get; init; } = 3;

    /// <summary>Rules of this class beyond the shared ones: returns the problem (without the source prefix), or null.</summary>
    public Func<SchedulerConfig, string?>? Validate { get; init; }

    /// <summary>
    /// A last adjustment when a short name resolves to this class, after the schedule is applied
    /// (null: none). Not applied to configs read from a file, which keep diffusers' meaning.
    /// </summary>
    public Func<SchedulerConfig, SchedulerConfig>? AdjustShortName { get; init; }

    /// <summary>The short sampler names (<c>--sampler</c>) this file defines.</summary>
    public IReadOnlyList<ShortName> ShortNames { get; init; } = [];
}

/// <summary>
/// Per-class defaults of the config fields whose default or allowed values depend on the scheduler
/// class (the other fields share one default, see <see cref="SchedulerConfig"/> and each class's options).
/// </summary>
public sealed record SchedulerDefaults
{
    /// <summary>Default timestep_spacing.</summary>
    public string TimestepSpacing { get; init; } = "linspace";

    /// <summary>Default clip_sample.</summary>
    public bool ClipSample { get; init; }

    /// <summary>A prediction_type the class always uses, whatever the file says (null: read prediction_type).</summary>
    public string? FixedPredictionType { get; init; }

    /// <summary>algorithm_type: default and allowed values.</summary>
    public FieldChoice AlgorithmType { get; init; } = new("dpmsolver++", "dpmsolver", "dpmsolver++", "sde-dpmsolver", "sde-dpmsolver++");

    /// <summary>solver_type: default and allowed values.</summary>
    public FieldChoice SolverType { get; init; } = new("midpoint", "midpoint", "heun");
}

/// <summary>A string config field's default and the values accepted, in the order error messages list them.</summary>
/// <param name="Default">Value when the field is absent or null.</param>
/// <param name="Allowed">Accepted values.</param>
public sealed record FieldChoice(string Default, params string[] Allowed);
