namespace Engine.Sampling;

/// <summary>Creates the scheduler a config names.</summary>
public static class SchedulerFactory
{
    /// <summary>Creates a scheduler of <see cref="SchedulerConfig.ClassName"/> for <paramref name="steps"/> inference steps.</summary>
    public static Scheduler Create(SchedulerConfig config, int steps)
    {
        ArgumentNullException.ThrowIfNull(config);
        var kind = SchedulerRegistry.Get(config.ClassName);
        var create = kind.Create ?? throw new InvalidOperationException($"{config.ClassName} is registered without a Create.");
        return create(config, steps);
    }
}
