using System.Text.Json;

namespace Engine.Sampling;

/// <summary>
/// A diffusers <c>scheduler_config.json</c>, parsed field by field with each class's own defaults.
/// Unknown classes and unsupported values throw <see cref="SchedulerConfigException"/> naming the
/// field, the value and what is supported; fields the engine does not use are ignored, as diffusers does.
/// What differs between classes (defaults, allowed values, extra rules) comes from the class's
/// <see cref="SchedulerDescriptor"/> in <see cref="SchedulerRegistry"/>.
/// </summary>
public sealed record SchedulerConfig
{
    /// <summary>The diffusers scheduler classes the engine implements (see <see cref="SchedulerRegistry"/>).</summary>
    public static IReadOnlyList<string> SupportedClasses => SchedulerRegistry.SupportedClasses;

    /// <summary>diffusers class name (<c>_class_name</c>).</summary>
    public string ClassName { get; init; } = Schedulers.EulerScheduler.DiffusersClass;
    public int NumTrainTimesteps { get; init; } = 1000;
    public double BetaStart { get; init; } = 0.0001;
    public double BetaEnd { get; init; } = 0.02;
    /// <summary>linear, scaled_linear or squaredcos_cap_v2 (ignored when <see cref="TrainedBetas"/> is set).</summary>
    public string BetaSchedule { get; init; } = "linear";
    public double[]? TrainedBetas { get; init; }
    public bool RescaleBetasZeroSnr { get; init; }
    /// <summary>epsilon, v_prediction, sample, or flow (flow-matching velocity).</summary>
    public string PredictionType { get; init; } = "epsilon";
    /// <summary>leading, trailing or linspace.</summary>
    public string TimestepSpacing { get; init; } = "linspace";
    public int StepsOffset { get; init; }
    public bool ClipSample { get; init; }
    public double ClipSampleRange { get; init; } = 1.0;
    public bool SetAlphaToOne { get; init; } = true;
    public bool Thresholding { get; init; }
    public double DynamicThresholdingRatio { get; init; } = 0.995;
    public double SampleMaxValue { get; init; } = 1.0;
    public bool UseKarrasSigmas { get; init; }
    public bool UseExponentialSigmas { get; init; }
    public bool UseBetaSigmas { get; init; }
    public bool UseLuLambdas { get; init; }
    /// <summary>Shape parameters of the Beta sigma grid (diffusers uses 0.6, 0.6).</summary>
    public double BetaSigmasAlpha { get; init; } = 0.6;
    public double BetaSigmasBeta { get; init; } = 0.6;
    /// <summary>zero or sigma_min: the noise level after the last step.</summary>
    public string FinalSigmasType { get; init; } = "zero";
    public int SolverOrder { get; init; } = 2;
    /// <summary>dpmsolver, dpmsolver++, sde-dpmsolver, sde-dpmsolver++ (DPM-Solver); deis (DEIS).</summary>
    public string AlgorithmType { get; init; } = "dpmsolver++";
    /// <summary>midpoint or heun (DPM-Solver), logrho (DEIS), bh1 or bh2 (UniPC).</summary>
    public string SolverType { get; init; } = "midpoint";
    public bool LowerOrderFinal { get; init; } = true;
    public bool EulerAtFinal { get; init; }
    public double LambdaMinClipped { get; init; } = double.NegativeInfinity;
    public bool PredictX0 { get; init; } = true;
    public int[] DisableCorrector { get; init; } = [];
    public bool SkipPrkSteps { get; init; }
    /// <summary>fixed_small, fixed_small_log, fixed_large, fixed_large_log (DDPM).</summary>
    public string VarianceType { get; init; } = "fixed_small";
    /// <summary>Flow-matching time shift.</summary>
    public double Shift { get; init; } = 1.0;
    /// <summary>Euler: discrete (model sees timesteps) or continuous (model sees 0.25 log sigma).</summary>
    public string TimestepType { get; init; } = "discrete";
    /// <summary>Euler: interpolation of sigmas between timesteps (linear; diffusers' log_linear is not supported).</summary>
    public string InterpolationType { get; init; } = "linear";
    public double? SigmaMin { get; init; }
    public double? SigmaMax { get; init; }

    /// <summary>True for schedulers that work on the Karras sample x = x0 + sigma eps (input scaled by 1/sqrt(sigma^2+1)).</summary>
    public bool IsKarrasForm => Kind?.IsKarrasForm ?? false;

    /// <summary>The registered scheduler of <see cref="ClassName"/> (null when no scheduler implements it).</summary>
    public SchedulerDescriptor? Kind => SchedulerRegistry.Find(ClassName);

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
        var r = new Reader(e, source);
        string cls = className ?? r.Str("_class_name", Schedulers.EulerScheduler.DiffusersClass);
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
            SolverOrder = r.Int("solver_order", 2),
            AlgorithmType = r.Choice("algorithm_type", k.AlgorithmType.Default, k.AlgorithmType.Allowed),
            SolverType = r.Choice("solver_type", k.SolverType.Default, k.SolverType.Allowed),
            LowerOrderFinal = r.Bool("lower_order_final", true),
            EulerAtFinal = r.Bool("euler_at_final", false),
            LambdaMinClipped = r.Num("lambda_min_clipped", double.NegativeInfinity),
            PredictX0 = r.Bool("predict_x0", true),
            DisableCorrector = r.IntArray("disable_corrector") ?? [],
            SkipPrkSteps = r.Bool("skip_prk_steps", false),
            VarianceType = r.Choice("variance_type", k.VarianceType,
                "fixed_small", "fixed_small_log", "fixed_large", "fixed_large_log", "none"),
            Shift = r.Num("shift", 1.0),
            TimestepType = r.Choice("timestep_type", "discrete", "discrete", "continuous"),
            InterpolationType = r.Choice("interpolation_type", "linear", "linear"),
            SigmaMin = r.NullableNum("sigma_min"),
            SigmaMax = r.NullableNum("sigma_max"),
        };
        c.Validate(kind, source);
        return c;
    }

    private void Validate(SchedulerDescriptor kind, string source)
    {
        void Fail(string msg) => throw new SchedulerConfigException($"{source}: {msg}");
        if (NumTrainTimesteps < 2) Fail($"num_train_timesteps {NumTrainTimesteps} must be >= 2.");
        if (TrainedBetas is { } tb && tb.Length != NumTrainTimesteps) Fail($"trained_betas has {tb.Length} values; num_train_timesteps is {NumTrainTimesteps}.");
        if (TrainedBetas is { } tb2 && tb2.Any(b => !(b > 0 && b < 1))) Fail("trained_betas must lie in (0, 1).");
        if (!(BetaStart > 0 && BetaEnd > 0 && BetaStart < 1 && BetaEnd < 1)) Fail($"beta_start {BetaStart} and beta_end {BetaEnd} must lie in (0, 1).");
        int maxOrder = kind.MaxSolverOrder;
        if (SolverOrder < 1 || SolverOrder > maxOrder) Fail($"solver_order {SolverOrder} is not supported; supported: 1..{maxOrder}.");
        int grids = (UseKarrasSigmas ? 1 : 0) + (UseExponentialSigmas ? 1 : 0) + (UseBetaSigmas ? 1 : 0) + (UseLuLambdas ? 1 : 0);
        if (grids > 1) Fail("only one of use_karras_sigmas, use_exponential_sigmas, use_beta_sigmas, use_lu_lambdas may be true.");
        if (UseLuLambdas && !kind.SupportsLuLambdas)
            Fail($"use_lu_lambdas is only supported by {string.Join(", ", SchedulerRegistry.All.Where(d => d.SupportsLuLambdas).SelectMany(d => d.ClassNames))}, not {ClassName}.");
        if (!kind.HasSigmaGrid && grids > 0)
            Fail($"{ClassName} does not support Karras/exponential/beta sigma grids.");
        if (!(Shift > 0)) Fail($"shift {Shift} must be > 0.");
        if (kind.Validate?.Invoke(this) is { } problem) Fail(problem);
        if (TimestepType == "continuous" && PredictionType != "v_prediction") Fail("timestep_type 'continuous' requires prediction_type 'v_prediction'.");
    }

    /// <summary>Field-by-field JSON access with clear errors.</summary>
    private readonly struct Reader(JsonElement e, string source)
    {
        private JsonElement? Get(string name) =>
            e.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        private SchedulerConfigException Bad(string name, JsonElement v, string expected) =>
            new($"{source}: field '{name}' = {v.GetRawText()} is invalid; expected {expected}.");

        public string Str(string name, string dflt)
        {
            if (Get(name) is not { } v) return dflt;
            return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Bad(name, v, "a string");
        }

        public string Choice(string name, string dflt, params string[] allowed)
        {
            if (Get(name) is not { } v) return dflt;
            if (v.ValueKind != JsonValueKind.String) throw Bad(name, v, "one of " + string.Join(", ", allowed));
            var s = v.GetString()!;
            if (!allowed.Contains(s)) throw new SchedulerConfigException($"{source}: field '{name}' = '{s}' is not supported; supported: {string.Join(", ", allowed)}.");
            return s;
        }

        public double Num(string name, double dflt) => NullableNum(name) ?? dflt;

        public double? NullableNum(string name)
        {
            if (Get(name) is not { } v) return null;
            if (v.ValueKind == JsonValueKind.Number) return v.GetDouble();
            if (v.ValueKind == JsonValueKind.String && v.GetString() is "-inf" or "-Infinity") return double.NegativeInfinity;
            if (v.ValueKind == JsonValueKind.String && v.GetString() is "inf" or "Infinity") return double.PositiveInfinity;
            throw Bad(name, v, "a number");
        }

        public int Int(string name, int dflt)
        {
            if (Get(name) is not { } v) return dflt;
            return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Bad(name, v, "an integer");
        }

        public bool Bool(string name, bool dflt)
        {
            if (Get(name) is not { } v) return dflt;
            return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => throw Bad(name, v, "true or false") };
        }

        public double[]? NumArray(string name)
        {
            if (Get(name) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(name, v, "an array of numbers");
            var list = new List<double>();
            foreach (var x in v.EnumerateArray())
                list.Add(x.ValueKind == JsonValueKind.Number ? x.GetDouble() : throw Bad(name, x, "numbers only"));
            return [.. list];
        }

        public int[]? IntArray(string name)
        {
            if (Get(name) is not { } v) return null;
            if (v.ValueKind != JsonValueKind.Array) throw Bad(name, v, "an array of integers");
            var list = new List<int>();
            foreach (var x in v.EnumerateArray())
                list.Add(x.ValueKind == JsonValueKind.Number && x.TryGetInt32(out int i) ? i : throw Bad(name, x, "integers only"));
            return [.. list];
        }
    }
}

/// <summary>A scheduler config that the engine cannot use, with the field and what is supported.</summary>
public sealed class SchedulerConfigException(string message) : ArgumentException(message);
