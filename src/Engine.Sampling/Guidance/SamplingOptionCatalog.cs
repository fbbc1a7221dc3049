using System.Globalization;

namespace Engine.Sampling.Guidance;

/// <summary>One guidance method or plug-in the engine offers, with the option keys it reads.</summary>
/// <param name="Name">Short name.</param>
/// <param name="Description">One line.</param>
/// <param name="Keys">The <c>key=value</c> options that configure it.</param>
public sealed record SamplingOptionEntry(string Name, string Description, IReadOnlyList<string> Keys);

/// <summary>
/// The guidance methods and plug-ins, and the parser of their <c>key=value</c> options (as the CLI
/// passes them with <c>--option</c>). Unknown keys and impossible values throw
/// <see cref="ArgumentException"/> naming the key and the allowed range.
/// </summary>
public static class SamplingOptionCatalog
{
    /// <summary>Every entry, off by default.</summary>
    public static IReadOnlyList<SamplingOptionEntry> Entries { get; } =
    [
        new("cfg", "Classifier-free guidance: eps_u + w (eps_c - eps_u) in one batched forward.", ["cfg_scale"]),
        new("cfg_rescale", "CFG rescale (phi): match the guided prediction's per-sample std to the conditional one.", ["cfg_rescale"]),
        new("guidance_interval", "Apply CFG/PAG only for sigma in (lo, hi]; elsewhere the unconditional branch is skipped.", ["cfg_interval"]),
        new("pag", "Perturbed-attention guidance: third branch with identity self-attention in the chosen layers.", ["pag_scale", "pag_layers"]),
        new("cads", "Condition-annealed sampling: noise on the conditioning, annealed by gamma(t), rescaled and mixed by psi.", ["cads_scale", "cads_tau1", "cads_tau2", "cads_psi", "cads_seed"]),
        new("pc_guidance", "Predictor-corrector CFG: conditional predictor plus Langevin corrector on p(x|c)^gamma p(x)^(1-gamma).", ["pc_gamma", "pc_steps", "pc_step_size"]),
        new("eps_scaling", "Epsilon scaling: divide the predicted noise by s(t) = k t + b to reduce exposure bias.", ["eps_scale", "eps_scale_slope"]),
        new("time_shift", "Time-shift: condition the model on the nearby timestep whose noise variance matches the sample's.", ["ts_window", "ts_cutoff"]),
        new("higs", "History-guided sampling: push the prediction away from the EMA of past predictions.", ["higs_weight", "higs_alpha", "higs_window"]),
        new("fsampler", "FSampler: replace some model calls by h2/h3/h4 extrapolation of the noise history, with guards.", ["fsampler", "fsampler_mode", "fsampler_skip_every", "fsampler_skip_calls", "fsampler_protect_first", "fsampler_protect_last"]),
        new("dc_solver", "DC-Solver compensation: Lagrange-interpolated data prediction at per-step ratios from a JSON file.", ["dc_ratios", "dc_order"]),
        new("distillation", "Distillation++: a few-step student refined by its teacher (with its own CFG) in the first steps.", ["distill_lambda", "distill_guide_steps", "distill_renoise", "distill_hybrid_mix", "teacher_cfg"]),
    ];

    /// <summary>All option keys.</summary>
    public static IReadOnlyList<string> Keys { get; } = Entries.SelectMany(e => e.Keys).ToArray();

    /// <summary>Parses options such as <c>pag_scale=3</c>; each item is <c>key=value</c>.</summary>
    public static SamplingOptions Parse(IEnumerable<string> keyValues)
    {
        var dict = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var kv in keyValues)
        {
            int eq = kv.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"Option '{kv}' is not of the form key=value.");
            var key = kv[..eq].Trim();
            if (!dict.TryAdd(key, kv[(eq + 1)..].Trim())) throw new ArgumentException($"Option '{key}' is given twice.");
        }
        return Parse(dict);
    }

    /// <summary>Parses a dictionary of option strings.</summary>
    public static SamplingOptions Parse(IReadOnlyDictionary<string, string> options)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var key in options.Keys)
            if (!Keys.Contains(key))
                throw new ArgumentException($"Unknown option '{key}'; known options: {string.Join(", ", Keys)}.");
        var p = new Reader(options);
        CadsOptions? cads = null;
        if (options.ContainsKey("cads_scale") || options.Keys.Any(k => k.StartsWith("cads_", StringComparison.Ordinal)))
            cads = new CadsOptions
            {
                NoiseScale = p.Double("cads_scale", 0.25, 0, double.MaxValue),
                Tau1 = p.Double("cads_tau1", 0.6, 0, 1),
                Tau2 = p.Double("cads_tau2", 0.9, 0, 1),
                Psi = p.Double("cads_psi", 1, 0, 1),
                Seed = (ulong)p.Long("cads_seed", 0, 0, long.MaxValue),
            };
        var interval = p.Pair("cfg_interval", 0, double.PositiveInfinity);
        var guidance = new GuidanceOptions
        {
            Scale = p.Double("cfg_scale", 1, -1e6, 1e6),
            RescalePhi = p.Double("cfg_rescale", 0, 0, 1),
            IntervalSigmaMin = interval.Lo,
            IntervalSigmaMax = interval.Hi,
            PagScale = p.Double("pag_scale", 0, 0, 1e6),
            PagLayers = options.TryGetValue("pag_layers", out var layers) ? layers.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : ["mid_block"],
            Cads = cads,
        };
        Wrap("cfg_interval / cads", guidance.Validate);
        string fs = options.TryGetValue("fsampler", out var f) ? f.ToLowerInvariant() : "off";
        int order = fs switch
        {
            "off" => 2, "h2" => 2, "h3" => 3, "h4" => 4,
            _ => throw new ArgumentException($"Option 'fsampler' = '{f}' is not valid; allowed: off, h2, h3, h4."),
        };
        string mode = options.TryGetValue("fsampler_mode", out var fm) ? fm.ToLowerInvariant() : "fixed";
        if (mode is not ("fixed" or "adaptive")) throw new ArgumentException($"Option 'fsampler_mode' = '{fm}' is not valid; allowed: fixed, adaptive.");
        var fsampler = new Plugins.FSamplerOptions
        {
            Mode = fs == "off" ? Plugins.FSamplerMode.Off : mode == "adaptive" ? Plugins.FSamplerMode.Adaptive : Plugins.FSamplerMode.Fixed,
            Order = order,
            SkipEvery = (int)p.Long("fsampler_skip_every", 0, 0, 1000),
            SkipCalls = options.TryGetValue("fsampler_skip_calls", out var sc) ? p.IntList("fsampler_skip_calls", sc) : [],
            ProtectFirst = (int)p.Long("fsampler_protect_first", 2, 0, 1000),
            ProtectLast = (int)p.Long("fsampler_protect_last", 4, 0, 1000),
        };
        if (fsampler.SkipEvery == 1) throw new ArgumentException("Option 'fsampler_skip_every' = 1 is not valid; allowed: 0 (off) or an integer >= 2.");
        var higs = p.Pair("higs_window", 0.4, 0.95);
        string renoise = options.TryGetValue("distill_renoise", out var rn) ? rn.ToLowerInvariant() : "deterministic";
        var result = new SamplingOptions
        {
            Guidance = guidance,
            PredictorCorrector = options.Keys.Any(k => k.StartsWith("pc_", StringComparison.Ordinal))
                ? new PredictorCorrectorOptions { Gamma = p.Double("pc_gamma", 1, -1e6, 1e6), CorrectorSteps = (int)p.Long("pc_steps", 1, 0, 1000), StepSize = p.Double("pc_step_size", 0.1, 1e-12, 1) }
                : null,
            EpsilonScale = p.Double("eps_scale", 1, 1e-6, 1e6),
            EpsilonScaleSlope = p.Double("eps_scale_slope", 0, -1e6, 1e6),
            TimeShiftWindow = (int)p.Long("ts_window", 0, 0, 1000),
            TimeShiftCutoff = p.Double("ts_cutoff", 0, 0, 1e6),
            HigsWeight = p.Double("higs_weight", 0, -100, 100),
            HigsAlpha = p.Double("higs_alpha", 0.75, 0, 0.999999),
            HigsWindow = higs,
            FSampler = fsampler,
            DcRatiosPath = options.TryGetValue("dc_ratios", out var dc) ? dc : null,
            DcOrder = (int)p.Long("dc_order", 2, 1, 3),
            Distillation = new Distillation.DistillationOptions
            {
                Lambda = p.Double("distill_lambda", 0, 0, 1),
                GuideSteps = (int)p.Long("distill_guide_steps", 1, 0, 1000),
                HybridMix = p.Double("distill_hybrid_mix", 0.5, 0, 1),
                Renoise = renoise switch
                {
                    "random" => Distillation.RenoiseMode.Random,
                    "deterministic" => Distillation.RenoiseMode.Deterministic,
                    "hybrid" => Distillation.RenoiseMode.Hybrid,
                    _ => throw new ArgumentException($"Option 'distill_renoise' = '{rn}' is not valid; allowed: random, deterministic, hybrid."),
                },
            },
            TeacherScale = p.Double("teacher_cfg", 1, -1e6, 1e6),
        };
        if (result.HigsWindow.Hi > 1) throw new ArgumentException($"Option 'higs_window' = '{options["higs_window"]}' is not valid; allowed: lo,hi with 0 <= lo <= hi <= 1.");
        return result;
    }

    private static void Wrap(string what, Action validate)
    {
        try { validate(); }
        catch (ArgumentOutOfRangeException e) { throw new ArgumentException($"Options ({what}): {e.Message}", e); }
    }

    private sealed class Reader(IReadOnlyDictionary<string, string> o)
    {
        public double Double(string key, double def, double min, double max)
        {
            if (!o.TryGetValue(key, out var s)) return def;
            if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
                throw new ArgumentException($"Option '{key}' = '{s}' is not a number; allowed: [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}].");
            if (v < min || v > max)
                throw new ArgumentException($"Option '{key}' = {s} is out of range; allowed: [{min.ToString(CultureInfo.InvariantCulture)}, {max.ToString(CultureInfo.InvariantCulture)}].");
            return v;
        }

        public long Long(string key, long def, long min, long max)
        {
            if (!o.TryGetValue(key, out var s)) return def;
            if (!long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new ArgumentException($"Option '{key}' = '{s}' is not an integer; allowed: [{min}, {max}].");
            if (v < min || v > max) throw new ArgumentException($"Option '{key}' = {s} is out of range; allowed: [{min}, {max}].");
            return v;
        }

        public (double Lo, double Hi) Pair(string key, double lo, double hi)
        {
            if (!o.TryGetValue(key, out var s)) return (lo, hi);
            var parts = s.Split(',', StringSplitOptions.TrimEntries);
            if (parts.Length != 2
                || !double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var a)
                || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var b)
                || !(a >= 0) || !(b > a))
                throw new ArgumentException($"Option '{key}' = '{s}' is not valid; allowed: lo,hi with 0 <= lo < hi.");
            return (a, b);
        }

        public int[] IntList(string key, string s)
        {
            var parts = s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var r = new int[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out r[i]) || r[i] < 0)
                    throw new ArgumentException($"Option '{key}' = '{s}' is not valid; allowed: comma-separated call indices >= 0.");
            return r;
        }
    }
}
