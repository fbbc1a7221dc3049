namespace Engine.Sampling;

/// <summary>
/// The options only one scheduler class (or family) reads, next to the shared fields of
/// <see cref="SchedulerConfig"/>; as in diffusers, a class's config is its constructor's arguments.
/// Each scheduler file declares its own derived record (a nested <c>Options</c>) and the
/// <see cref="SchedulerDescriptor.ReadOptions"/> that parses it from the config's keys.
/// </summary>
public abstract record SchedulerOptions;

/// <summary>The options of a class that reads only the shared fields of <see cref="SchedulerConfig"/> (DDIM).</summary>
public sealed record SharedOnly : SchedulerOptions
{
    private SharedOnly() { }

    /// <summary>The one instance.</summary>
    public static SharedOnly Instance { get; } = new();
}
