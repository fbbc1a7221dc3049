using Engine.Sampling.KDiffusion;

namespace Engine.Sampling;

/// <summary>
/// Short sampler names (euler, dpmpp_2m, ...) and schedule names (karras, exponential, ...) on a model's
/// training schedule. ComfyUI's names (<see cref="KSamplerCatalog"/>) mean what ComfyUI's KSampler means:
/// k-diffusion's update rule on ComfyUI's sigma grid (<see cref="ComfySchedules"/>) with its model wrapping.
/// The other names pick a diffusers scheduler class and options (declared in the scheduler's file, see
/// <see cref="SchedulerRegistry"/>) and read the schedule as that class's grid option. A scheduler config
/// file never goes through here: it keeps diffusers' meaning.
/// </summary>
public static class SamplerNames
{
    /// <summary>Samplers, in the order <c>engine samplers</c> lists them.</summary>
    public static IReadOnlyList<ShortName> Samplers { get; } =
        SchedulerRegistry.ShortNames.Concat(KSamplerCatalog.Entries.Select(ComfyShortName)).OrderBy(s => s.ListOrder).ToArray();

    /// <summary>Noise schedules; with a ComfyUI sampler name each is ComfyUI's grid, with the others the diffusers grid option below.</summary>
    public static IReadOnlyList<ShortName> Schedules { get; } =
    [
        new("normal", "the scheduler's own spacing (diffusers default for its class)", c => NoGrid(c)),
        new("karras", "Karras et al. sigmas (rho 7) between sigma_max and sigma_min", c => NoGrid(c) with { UseKarrasSigmas = true }),
        new("exponential", "log-linear sigmas from sigma_max to sigma_min", c => NoGrid(c) with { UseExponentialSigmas = true }),
        new("beta", "Beta(0.6, 0.6) sampling of sigmas (Lee et al. 2024)", c => NoGrid(c) with { UseBetaSigmas = true }),
        new("simple", "evenly spaced training timesteps from the top (trailing)", c => NoGrid(c) with { TimestepSpacing = "trailing" }),
        new("sgm_uniform", "evenly spaced timesteps from t_max to t_min (linspace)", c => NoGrid(c) with { TimestepSpacing = "linspace" }),
        new("ddim_uniform", "ComfyUI's schedule only (no diffusers grid option)",
            _ => throw new SchedulerConfigException("Schedule 'ddim_uniform' is ComfyUI's: use it with a ComfyUI sampler name (euler, dpmpp_2m, ...; see 'engine samplers').")),
    ];

    private static SchedulerConfig NoGrid(SchedulerConfig c) =>
        c with { UseKarrasSigmas = false, UseExponentialSigmas = false, UseBetaSigmas = false, UseLuLambdas = false };

    private static ShortName ComfyShortName(KSamplerEntry e) =>
        new(e.Name, e.Description, c => c)
        {
            BuildOnSchedule = (c, schedule, steps) => KSamplerCatalog.Create(e, c, schedule, steps),
            Convention = NameConvention.ComfyUI,
            ListOrder = e.ListOrder,
        };

    /// <summary>
    /// The engine's name for <paramref name="sampler"/> (ComfyUI's spellings such as <c>euler_ancestral</c> map
    /// to the engine's <c>euler_a</c>). Throws <see cref="SchedulerConfigException"/> for an unknown name, naming
    /// the nearest available sampler for ComfyUI names the engine does not run, else listing the known ones.
    /// </summary>
    public static string Canonical(string? sampler)
    {
        string name = sampler?.Trim().ToLowerInvariant() ?? "";
        if (Samplers.Any(e => e.Name == name)) return name;
        if (KSamplerCatalog.Find(name) is { } k) return k.Name;
        if (KSamplerCatalog.Unavailable.TryGetValue(name, out var nearest))
            throw new SchedulerConfigException($"Sampler '{sampler}' (ComfyUI) is not available; the nearest available is '{nearest}' ('engine samplers' lists them).");
        throw new SchedulerConfigException($"Unknown sampler '{sampler}'; known: {string.Join(", ", Samplers.Select(e => e.Name))}.");
    }

    /// <summary>True when <paramref name="sampler"/> names a sampler (or a ComfyUI spelling of one).</summary>
    public static bool IsKnown(string? sampler)
    {
        try { Canonical(sampler); return true; }
        catch (SchedulerConfigException) { return false; }
    }

    /// <summary>Whose convention <paramref name="sampler"/> follows.</summary>
    public static NameConvention ConventionOf(string sampler) => Find(sampler).Convention;

    /// <summary>
    /// The scheduler config for a short sampler name and optional schedule name on top of a model's
    /// scheduler config (a ComfyUI name keeps the model's training schedule, its grid comes from the
    /// schedule name). Throws <see cref="SchedulerConfigException"/> naming an unknown or unusable name.
    /// </summary>
    public static SchedulerConfig Resolve(SchedulerConfig model, string sampler, string? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Resolve(model, Find(sampler), schedule);
    }

    private static ShortName Find(string? sampler)
    {
        string name = Canonical(sampler);
        return Samplers.First(e => e.Name == name);
    }

    private static SchedulerConfig Resolve(SchedulerConfig model, ShortName s, string? schedule)
    {
        if (s.BuildOnSchedule is not null)
        {
            if (!string.IsNullOrWhiteSpace(schedule) && !ComfySchedules.IsKnown(schedule.Trim().ToLowerInvariant()))
                throw new SchedulerConfigException($"Unknown schedule '{schedule}' for ComfyUI sampler '{s.Name}'; ComfyUI's: {string.Join(", ", ComfySchedules.All.Select(e => e.Name))}.");
            return s.Apply(model);
        }
        var c = s.Apply(model);
        var kind = SchedulerRegistry.Get(c.ClassName);
        if (!string.IsNullOrWhiteSpace(schedule))
        {
            var g = Schedules.FirstOrDefault(e => e.Name == schedule.Trim().ToLowerInvariant())
                ?? throw new SchedulerConfigException($"Unknown schedule '{schedule}'; known: {string.Join(", ", Schedules.Select(e => e.Name))}.");
            c = g.Apply(c);
            if (!kind.HasSigmaGrid && (c.UseKarrasSigmas || c.UseExponentialSigmas || c.UseBetaSigmas))
                throw new SchedulerConfigException($"Sampler '{s.Name}' ({c.ClassName}) has no sigma grid; schedule '{schedule}' is not supported with it; use normal, simple or sgm_uniform.");
        }
        return kind.AdjustShortName is { } adjust ? adjust(c) : c;
    }

    /// <summary>Creates the scheduler for a short sampler name and optional schedule on a model's config.</summary>
    public static Scheduler Create(SchedulerConfig model, string sampler, string? schedule, int steps)
    {
        ArgumentNullException.ThrowIfNull(model);
        var entry = Find(sampler);
        var config = Resolve(model, entry, schedule);
        if (entry.BuildOnSchedule is { } onSchedule) return onSchedule(config, schedule, steps);
        return entry.Build is { } build ? build(config, steps) : SchedulerFactory.Create(config, steps);
    }

    /// <summary>
    /// What a run with this name calls its scheduler in results and sidecars: the diffusers class, or
    /// <c>ComfyUI NAME (SCHEDULE)</c> for ComfyUI's names.
    /// </summary>
    public static string Label(SchedulerConfig model, string sampler, string? schedule)
    {
        var entry = Find(sampler);
        if (entry.BuildOnSchedule is null) return Resolve(model, entry, schedule).ClassName;
        Resolve(model, entry, schedule);
        return $"ComfyUI {entry.Name} ({(string.IsNullOrWhiteSpace(schedule) ? KSamplerCatalog.DefaultSchedule : schedule.Trim().ToLowerInvariant())})";
    }

    /// <summary>A text listing of samplers (with the convention each follows), schedules and ComfyUI names not available.</summary>
    public static string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("Samplers (convention: comfyui = ComfyUI's KSampler, k-diffusion update on ComfyUI's grid and model wrapping;");
        sb.AppendLine("          diffusers = a diffusers scheduler class on the model's config; engine = the engine's own, on a diffusers grid):");
        foreach (var e in Samplers)
        {
            var k = KSamplerCatalog.Find(e.Name);
            string alias = k is not null && k.ComfyName != k.Name ? $" [ComfyUI: {k.ComfyName}]" : "";
            sb.AppendLine($"  {e.Name,-14} {e.Convention.ToString().ToLowerInvariant(),-9} {e.Description}{alias}");
        }
        sb.AppendLine("Schedules with ComfyUI names (ComfyUI's grids, final 0 included; default normal):");
        foreach (var (name, description) in ComfySchedules.All) sb.AppendLine($"  {name,-14} {description}");
        sb.AppendLine("Schedules with diffusers and engine names (the class's grid option):");
        foreach (var e in Schedules) sb.AppendLine($"  {e.Name,-14} {e.Description}");
        sb.AppendLine("ComfyUI samplers not available (nearest available):");
        foreach (var (name, nearest) in KSamplerCatalog.Unavailable) sb.AppendLine($"  {name,-26} -> {nearest}");
        sb.AppendLine("  ddim, deis                 -> same names here are diffusers' DDIMScheduler / DEISMultistepScheduler (ComfyUI's ddim is euler; its deis differs)");
        return sb.ToString();
    }
}
