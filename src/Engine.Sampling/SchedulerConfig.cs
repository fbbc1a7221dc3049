using System.Text.Json;
using Engine.Sampling.Schedulers;

namespace Engine.Sampling;

/// <summary>
/// A diffusers <c>scheduler_config.json</c>: the fields every scheduler shares (training schedule,
/// timestep spacing, x0 limits, sigma grid) as typed properties, the class's own options in
/// <see cref="Options"/>, and the file's key/value pairs in <see cref="Raw"/>, from which another
/// class's options are read when a short name switches class (<see cref="WithClass"/>), as diffusers'
/// <c>from_config</c> passes the whole dict and each class takes its own arguments.
/// Unknown classes and unsupported values throw <see cref="SchedulerConfigException"/> naming the
/// field, the value and what is supported; fields the engine does not use are ignored, as diffusers does.
/// What differs between classes comes from the class's <see cref="SchedulerDescriptor"/> in <see cref="SchedulerRegistry"/>.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>The diffusers scheduler classes the engine implements (see <see cref="SchedulerRegistry"/>).</summary>
    public static IReadOnlyList<string> SupportedClasses => SchedulerRegistry.SupportedClasses;

    /// <summary>diffusers class name (<c>_class_name</c>).</summary>
    public string ClassName { get; init; } = EulerScheduler.DiffusersClass;
    /// <summary>Length of the training schedule.</summary>
    public int NumTrainTimesteps { get; init; } = 1000;
    /// <summary>First beta of the linear / scaled_linear schedule.</summary>
    public double BetaStart { get; init; } = 0.0001;
    /// <summary>Last beta of the linear / scaled_linear schedule.</summary>
    public double BetaEnd { get; init; } = 0.02;
    /// <summary>linear, scaled_linear or squaredcos_cap_v2 (ignored when <see cref="TrainedBetas"/> is set).</summary>
    public string BetaSchedule { get; init; } = "linear";
    /// <summary>Explicit betas, one per training timestep (null: from <see cref="BetaSchedule"/>).</summary>
    public double[]? TrainedBetas { get; init; }
    /// <summary>Rescale the betas to zero terminal SNR (Lin et al. 2024).</summary>
    public bool RescaleBetasZeroSnr { get; init; }
    /// <summary>epsilon, v_prediction, sample, or flow (flow-matching velocity).</summary>
    public string PredictionType { get; init; } = "epsilon";
    /// <summary>leading, trailing or linspace.</summary>
    public string TimestepSpacing { get; init; } = "linspace";
    /// <summary>Offset added to leading timesteps.</summary>
    public int StepsOffset { get; init; }
    /// <summary>Clip the x0 estimate to ±<see cref="ClipSampleRange"/> (the classes that materialise x0; default per class).</summary>
    public bool ClipSample { get; init; }
    /// <summary>Bound of <see cref="ClipSample"/>.</summary>
    public double ClipSampleRange { get; init; } = 1.0;
    /// <summary>The alpha_cumprod after the last step is 1 (else alpha_cumprod[0]), for the classes stepping to a "previous" timestep.</summary>
    public bool SetAlphaToOne { get; init; } = true;
    /// <summary>Dynamic thresholding of x0 (Imagen); only classes with <see cref="SchedulerDescriptor.SupportsThresholding"/> accept it.</summary>
    public bool Thresholding { get; init; }
    /// <summary>Percentile of |x0| used as the threshold.</summary>
    public double DynamicThresholdingRatio { get; init; } = 0.995;
    /// <summary>Largest threshold.</summary>
    public double SampleMaxValue { get; init; } = 1.0;
    /// <summary>Karras et al. sigma grid.</summary>
    public bool UseKarrasSigmas { get; init; }
    /// <summary>Log-linear sigma grid.</summary>
    public bool UseExponentialSigmas { get; init; }
    /// <summary>Beta-distribution sigma grid.</summary>
    public bool UseBetaSigmas { get; init; }
    /// <summary>Uniform steps in log-SNR (only classes with <see cref="SchedulerDescriptor.SupportsLuLambdas"/>).</summary>
    public bool UseLuLambdas { get; init; }
    /// <summary>Shape parameters of the Beta sigma grid (diffusers uses 0.6, 0.6).</summary>
    public double BetaSigmasAlpha { get; init; } = 0.6;
    /// <summary>Second shape parameter of the Beta sigma grid.</summary>
    public double BetaSigmasBeta { get; init; } = 0.6;
    /// <summary>zero or sigma_min: the noise level after the last step.</summary>
    public string FinalSigmasType { get; init; } = "zero";
    /// <summary>Lower end of a sigma grid (null: the training schedule's).</summary>
    public double? SigmaMin { get; init; }
    /// <summary>Upper end of a sigma grid (null: the training schedule's).</summary>
    public double? SigmaMax { get; init; }

    /// <summary>
    /// diffusers' <c>step(eta=...)</c>: DDIM's eta, TCD's gamma. An argument of the call, not a key of the file;
    /// null = the step's own default (DDIM 0, TCD 0.3). Classes without it refuse a value (<see cref="SchedulerDescriptor.TakesEta"/>).
    /// </summary>
    public double? Eta { get; init; }

    /// <summary>
    /// diffusers' <c>set_timesteps(timesteps=[...])</c>: custom integer timesteps, descending, one per step;
    /// null = the class's own grid. Only classes with <see cref="SchedulerDescriptor.TakesCustomTimesteps"/> accept them.
    /// </summary>
    public int[]? CustomTimesteps { get; init; }

    /// <summary>The options only <see cref="ClassName"/>'s class reads (its nested <c>Options</c> record).</summary>
    public SchedulerOptions Options { get; init; } = new KarrasFormScheduler.Options();

    /// <summary>
    /// The config's key/value pairs as read (plus the keys a class switch set); the typed properties
    /// above, not these, are authoritative for the shared fields.
    /// </summary>
    public IReadOnlyDictionary<string, JsonElement> Raw { get; init; } = new Dictionary<string, JsonElement>();

    /// <summary>True for schedulers that work on the Karras sample x = x0 + sigma eps (input scaled by 1/sqrt(sigma^2+1)).</summary>
    public bool IsKarrasForm => Kind?.IsKarrasForm ?? false;

    /// <summary>The registered scheduler of <see cref="ClassName"/> (null when no scheduler implements it).</summary>
    public SchedulerDescriptor? Kind => SchedulerRegistry.Find(ClassName);

    /// <summary>
    /// <see cref="Options"/> as <typeparamref name="T"/>; throws <see cref="InvalidOperationException"/>
    /// when the config's class has other options.
    /// </summary>
    public T OptionsAs<T>() where T : SchedulerOptions =>
        Options as T ?? throw new InvalidOperationException($"{ClassName} has {Options.GetType().FullName}, not {typeof(T).FullName}.");

    /// <summary>
    /// The same config for class <paramref name="className"/>, as diffusers' <c>from_config(config, **overrides)</c>:
    /// shared fields are kept, the class's options are read from <see cref="Raw"/> with
    /// <paramref name="overrides"/> (key, int/bool/double/string value) on top. Nothing is validated
    /// beyond the keys the class reads, as when a pipeline swaps schedulers.
    /// </summary>
    public SchedulerConfig WithClass(string className, params (string Key, object Value)[] overrides)
    {
        var kind = SchedulerRegistry.Get(className);
        var raw = new Dictionary<string, JsonElement>(Raw, StringComparer.Ordinal);
        foreach (var (key, value) in overrides) raw[key] = JsonValue(value);
        var read = kind.ReadOptions ?? throw new InvalidOperationException($"{className} is registered without ReadOptions.");
        return this with { ClassName = className, Raw = raw, Options = read(new SchedulerConfigReader(raw, "scheduler config"), kind.Defaults) };
    }

    private static JsonElement JsonValue(object value)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer))
            switch (value)
            {
                case int i: w.WriteNumberValue(i); break;
                case double d: w.WriteNumberValue(d); break;
                case bool b: w.WriteBooleanValue(b); break;
                case string s: w.WriteStringValue(s); break;
                default: throw new ArgumentException($"Unsupported config value type {value.GetType().Name}.", nameof(value));
            }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }

    /// <summary>Reads and parses a diffusers scheduler_config.json file.</summary>
    public static SchedulerConfig Load(string path)
    {
        if (!File.Exists(path)) throw new SchedulerConfigException($"Scheduler config '{path}' does not exist.");
        try
        {
            using var doc = JsonDocument.Parse(SanitizeJson(File.ReadAllText(path)));
            return Parse(doc.RootElement, null, path);
        }
        catch (JsonException e) { throw new SchedulerConfigException($"Scheduler config '{path}' is not valid JSON: {e.Message}"); }
    }

    /// <summary>Parses JSON text of a scheduler config.</summary>
    public static SchedulerConfig ParseJson(string json, string? className = null)
    {
        try
        {
            using var doc = JsonDocument.Parse(SanitizeJson(json));
            return Parse(doc.RootElement, className, "scheduler config");
        }
        catch (JsonException e) { throw new SchedulerConfigException($"Scheduler config is not valid JSON: {e.Message}"); }
    }

    /// <summary>
    /// Python's json writes -Infinity, Infinity and NaN as bare tokens (diffusers' lambda_min_clipped
    /// default is -inf); they are quoted here so the standard parser accepts them.
    /// </summary>
    public static string SanitizeJson(string json) =>
        System.Text.RegularExpressions.Regex.Replace(json, @"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])", "\"$1\"");

    /// <summary>
    /// Parses a config object. <paramref name="className"/> overrides <c>_class_name</c> (as when a
    /// pipeline swaps schedulers with <c>from_config</c>).
    /// </summary>
    public static SchedulerConfig Parse(JsonElement e, string? className = null, string source = "scheduler config")
    {
        if (e.ValueKind != JsonValueKind.Object) throw new SchedulerConfigException($"{source}: expected a JSON object.");
        var raw = new Dictionary<string, JsonElement>(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject()) raw[p.Name] = p.Value.Clone();   // the last duplicate wins, as in TryGetProperty
        var r = new SchedulerConfigReader(raw, source);
        string cls = className ?? r.Str("_class_name", EulerScheduler.DiffusersClass);
        var kind = SchedulerRegistry.Get(cls, $"{source}: ");
        var k = kind.Defaults;
        var c = new SchedulerConfig
        {
            ClassName = cls,
            NumTrainTimesteps = r.Int("num_train_timesteps", 1000),
            BetaStart = r.Num("beta_start", 0.0001),
            BetaEnd = r.Num("beta_end", 0.02),
            BetaSchedule = r.Choice("beta_schedule", "linear", "linear", "scaled_linear", "squaredcos_cap_v2"),
            TrainedBetas = r.NumArray("trained_betas"),
            RescaleBetasZeroSnr = r.Bool("rescale_betas_zero_snr", false),
            PredictionType = k.FixedPredictionType ?? r.Choice("prediction_type", "epsilon", "epsilon", "v_prediction", "sample"),
            TimestepSpacing = r.Choice("timestep_spacing", k.TimestepSpacing, "leading", "trailing", "linspace"),
            StepsOffset = r.Int("steps_offset", 0),
            ClipSample = r.Bool("clip_sample", k.ClipSample),
            ClipSampleRange = r.Num("clip_sample_range", 1.0),
            SetAlphaToOne = r.Bool("set_alpha_to_one", true),
            Thresholding = r.Bool("thresholding", false),
            DynamicThresholdingRatio = r.Num("dynamic_thresholding_ratio", 0.995),
            SampleMaxValue = r.Num("sample_max_value", 1.0),
            UseKarrasSigmas = r.Bool("use_karras_sigmas", false),
            UseExponentialSigmas = r.Bool("use_exponential_sigmas", false),
            UseBetaSigmas = r.Bool("use_beta_sigmas", false),
            UseLuLambdas = r.Bool("use_lu_lambdas", false),
            FinalSigmasType = r.Choice("final_sigmas_type", "zero", "zero", "sigma_min"),
            Raw = raw,
        };
        // Every class's keys are checked, with this class's allowed values, so a bad value fails here
        // and not later when a short name switches to the class that reads it. The sigma bounds are
        // read last, keeping the order in which a file with several bad keys reports the first.
        foreach (var read in SchedulerRegistry.OptionReaders) read(r, k);
        c = c with
        {
            Options = kind.ReadOptions!(r, k),
            SigmaMin = r.NullableNum("sigma_min"),
            SigmaMax = r.NullableNum("sigma_max"),
        };
        c.Validate(kind, r);
        return c;
    }

    /// <summary>The most training timesteps a config may declare (diffusers' schedules use 1000; tables are built per timestep).</summary>
    public const int MaxTrainTimesteps = 1_000_000;

    private void Validate(SchedulerDescriptor kind, SchedulerConfigReader r)
    {
        void Fail(string msg) => throw new SchedulerConfigException($"{r.Source}: {msg}");
        if (NumTrainTimesteps < 2 || NumTrainTimesteps > MaxTrainTimesteps) Fail($"num_train_timesteps {NumTrainTimesteps} must be from 2 to {MaxTrainTimesteps}.");
        if (StepsOffset < 0 || StepsOffset >= NumTrainTimesteps) Fail($"steps_offset {StepsOffset} must be from 0 to num_train_timesteps - 1 ({NumTrainTimesteps - 1}).");
        if (TrainedBetas is { } tb && tb.Length != NumTrainTimesteps) Fail($"trained_betas has {tb.Length} values; num_train_timesteps is {NumTrainTimesteps}.");
        if (TrainedBetas is { } tb2 && tb2.Any(b => !(b > 0 && b < 1))) Fail("trained_betas must lie in (0, 1).");
        if (!(BetaStart > 0 && BetaEnd > 0 && BetaStart < 1 && BetaEnd < 1)) Fail($"beta_start {BetaStart} and beta_end {BetaEnd} must lie in (0, 1).");
        // The linear schedules interpolate from beta_start up to beta_end; the cosine schedule ignores both.
        if (TrainedBetas is null && BetaSchedule != "squaredcos_cap_v2" && !(BetaStart < BetaEnd))
            Fail($"beta_start {BetaStart} must be less than beta_end {BetaEnd} (0 < beta_start < beta_end < 1).");
        // x0 limits: clipped to +-clip_sample_range, thresholded at a quantile of |x0| between 1 and sample_max_value.
        if (!(ClipSampleRange > 0)) Fail($"clip_sample_range {ClipSampleRange} must be > 0 (x0 is clipped to [-clip_sample_range, clip_sample_range]).");
        if (!(DynamicThresholdingRatio > 0 && DynamicThresholdingRatio <= 1)) Fail($"dynamic_thresholding_ratio {DynamicThresholdingRatio} must lie in (0, 1] (a quantile of |x0|).");
        if (!(SampleMaxValue > 0)) Fail($"sample_max_value {SampleMaxValue} must be > 0 (the largest threshold of x0).");
        // Sigma grid ends: noise levels, so positive, and the lower below the upper.
        if (SigmaMin is { } smin && !(smin > 0 && double.IsFinite(smin))) Fail($"sigma_min {smin} must be a finite number > 0.");
        if (SigmaMax is { } smax && !(smax > 0 && double.IsFinite(smax))) Fail($"sigma_max {smax} must be a finite number > 0.");
        if (SigmaMin is { } lo && SigmaMax is { } hi && !(lo < hi)) Fail($"sigma_min {lo} must be less than sigma_max {hi}.");
        // solver_order, shift and timestep_type are checked on every file whichever class reads them (see Parse).
        int order = r.Int("solver_order", 2), maxOrder = kind.MaxSolverOrder;
        if (order < 1 || order > maxOrder) Fail($"solver_order {order} is not supported; supported: 1..{maxOrder}.");
        int grids = (UseKarrasSigmas ? 1 : 0) + (UseExponentialSigmas ? 1 : 0) + (UseBetaSigmas ? 1 : 0) + (UseLuLambdas ? 1 : 0);
        if (grids > 1) Fail("only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas, use_lu_lambdas may be true.");
        if (UseLuLambdas && !kind.SupportsLuLambdas)
            Fail($"use_lu_lambdas is only supported by {string.Join(", ", SchedulerRegistry.All.Where(d => d.SupportsLuLambdas).SelectMany(d => d.ClassNames))}, not {ClassName}.");
        if (!kind.HasSigmaGrid && grids > 0)
            Fail($"{ClassName} does not support Karras/exponential/beta sigma grids.");
        double shift = r.Num("shift", 1.0);
        if (!(shift > 0)) Fail($"shift {shift} must be > 0.");
        if (kind.Validate?.Invoke(this) is { } problem) Fail(problem);
        if (r.Str("timestep_type", "discrete") == "continuous" && PredictionType != "v_prediction") Fail("timestep_type 'continuous' requires prediction_type 'v_prediction'.");
    }
}

/// <summary>A scheduler config that the engine cannot use, with the field and what is supported.</summary>
public sealed class SchedulerConfigException(string message) : ArgumentException(message);
