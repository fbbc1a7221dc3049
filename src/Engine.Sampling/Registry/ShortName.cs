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
}
