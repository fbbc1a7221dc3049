using Engine.Sampling.Schedulers;

namespace Engine.Sampling;

/// <summary>Creates the scheduler a config names.</summary>
public static class SchedulerFactory
{
    /// <summary>Creates a scheduler of <see cref="SchedulerConfig.ClassName"/> for <paramref name="steps"/> inference steps.</summary>
    public static Scheduler Create(SchedulerConfig config, int steps) => config.ClassName switch
    {
        "DDIMScheduler" => new DdimScheduler(config, steps),
        "DDPMScheduler" => new DdpmScheduler(config, steps),
        "EulerDiscreteScheduler" => new EulerScheduler(config, steps),
        "EulerAncestralDiscreteScheduler" => new EulerAncestralScheduler(config, steps),
        "HeunDiscreteScheduler" => new HeunScheduler(config, steps),
        "LMSDiscreteScheduler" => new LmsScheduler(config, steps),
        "KDPM2DiscreteScheduler" => new KDpm2Scheduler(config, steps),
        "PNDMScheduler" => new PndmScheduler(config, steps),
        "DPMSolverMultistepScheduler" => new DpmSolverMultistepScheduler(config, steps),
        "DPMSolverSinglestepScheduler" => new DpmSolverSinglestepScheduler(config, steps),
        "DEISMultistepScheduler" => new DeisScheduler(config, steps),
        "UniPCMultistepScheduler" => new UniPcScheduler(config, steps),
        "FlowMatchEulerDiscreteScheduler" => new FlowMatchEulerScheduler(config, steps),
        _ => throw new SchedulerConfigException($"_class_name '{config.ClassName}' is not supported; supported: {string.Join(", ", SchedulerConfig.SupportedClasses)}."),
    };
}
