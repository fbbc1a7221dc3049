namespace Engine.Sampling;

/// <summary>
/// Short sampler names (euler, dpmpp_2m, ...) and schedule names (karras, exponential, ...) mapped onto
/// the training schedule of a model's scheduler_config.json: the model keeps its betas, prediction type
/// and timestep count; the sampler name picks the scheduler class and options. Each sampler name is
/// declared in its scheduler's file (see <see cref="SchedulerRegistry"/>); the schedules, which apply
/// to any scheduler with a sigma grid, are listed here.
/// </summary>
public static class SamplerNames
{
    /// <summary>Samplers, in the order <c>engine samplers</c> lists them.</summary>
    public static IReadOnlyList<ShortName> Samplers => SchedulerRegistry.ShortNames;

    /// <summary>Noise schedules (time grids).</summary>
    public static IReadOnlyList<ShortName> Schedules { get; } =
    [
        new("normal", "the scheduler's own spacing (diffusers default for its class)", c => NoGrid(c)),
        new("karras", "Karras et al. sigmas (rho 7) between sigma_max and sigma_min", c => NoGrid(c) with { UseKarrasSigmas = true }),
        new("exponential", "log-linear sigmas from sigma_max to sigma_min", c => NoGrid(c) with { UseExponentialSigmas = true }),
        new("beta", "Beta(0.6, 0.6) sampling of sigmas (Lee et al. 2024)", c => NoGrid(c) with { UseBetaSigmas = true }),
        new("simple", "evenly spaced training timesteps from the top (trailing)", c => NoGrid(c) with { TimestepSpacing = "trailing" }),
        new("sgm_uniform", "evenly spaced timesteps from t_max to t_min (linspace)", c => NoGrid(c) with { TimestepSpacing = "linspace" }),
    ];

    private static SchedulerConfig NoGrid(SchedulerConfig c) =>
        c with { UseKarrasSigmas = false, UseExponentialSigmas = false, UseBetaSigmas = false, UseLuLambdas = false };

    /// <summary>
    /// The scheduler config for a short sampler name and optional schedule name on top of a model's
    /// scheduler config. Throws <see cref="SchedulerConfigException"/> naming the unknown name and listing the known ones.
    /// </summary>
    public static SchedulerConfig Resolve(SchedulerConfig model, string sampler, string? schedule = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Resolve(model, Find(sampler), schedule);
    }

    private static ShortName Find(string? sampler) =>
        Samplers.FirstOrDefault(e => e.Name == sampler?.Trim().ToLowerInvariant())
        ?? throw new SchedulerConfigException($"Unknown sampler '{sampler}'; known: {string.Join(", ", Samplers.Select(e => e.Name))}.");

    private static SchedulerConfig Resolve(SchedulerConfig model, ShortName s, string? schedule)
    {
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
        return entry.Build is { } build ? build(config, steps) : SchedulerFactory.Create(config, steps);
    }

    /// <summary>A text listing of samplers and schedules, one per line with its description.</summary>
    public static string Describe()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine("Samplers:");
        foreach (var e in Samplers) sb.AppendLine($"  {e.Name,-14} {e.Description}");
        sb.AppendLine("Schedules:");
        foreach (var e in Schedules) sb.AppendLine($"  {e.Name,-14} {e.Description}");
        return sb.ToString();
    }
}
