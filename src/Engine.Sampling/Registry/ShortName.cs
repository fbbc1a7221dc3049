namespace Engine.Sampling;

/// <summary>
/// A sampler or schedule as users name it (k-diffusion / ComfyUI style: <c>dpmpp_2m</c>, <c>karras</c>),
/// with a one-line description and how it changes a model's scheduler config.
/// </summary>
/// <param name="Name">The name given to <c>--sampler</c> or <c>--schedule</c>.</param>
/// <param name="Description">One line for <c>engine samplers</c>.</param>
/// <param name="Apply">Turns the model's config into this sampler's (class and options) or schedule's (grid).</param>
public sealed record ShortName(string Name, string Description, Func<SchedulerConfig, SchedulerConfig> Apply)
{
    /// <summary>
    /// Builds an engine sampler that the config's class alone does not describe (a variant or a
    /// sampler without a diffusers class); null: <see cref="SchedulerFactory"/> builds the class.
    /// </summary>
    public Func<SchedulerConfig, int, Scheduler>? Build { get; init; }

    /// <summary>Position in <c>engine samplers</c> (ascending; samplers from all files interleave by it).</summary>
    public int ListOrder { get; init; }

    /// <summary>
    /// Builds a sampler that takes the schedule name itself (ComfyUI's names: the grid is ComfyUI's, not a
    /// config flag); null for names built on a scheduler class. Its <see cref="Apply"/> keeps the model's config.
    /// </summary>
    public Func<SchedulerConfig, string?, int, Scheduler>? BuildOnSchedule { get; init; }

    /// <summary>The convention the name follows, for <c>engine samplers</c>.</summary>
    public NameConvention Convention { get; init; } = NameConvention.Diffusers;
}

/// <summary>Whose meaning a short sampler name carries.</summary>
public enum NameConvention
{
    /// <summary>A diffusers scheduler class with its own grid and timesteps, on the model's config.</summary>
    Diffusers,
    /// <summary>An engine sampler beyond diffusers, built on a diffusers class's grid.</summary>
    Engine,
    /// <summary>ComfyUI's KSampler: k-diffusion's update rule on ComfyUI's grid and model wrapping.</summary>
    ComfyUI,
}
