using Engine.Sampling.Schedulers;

namespace Engine.Sampling;

/// <summary>
/// The one list of schedulers. Parsing, validation, the factory and the short-name catalog look
/// schedulers up here by diffusers class name; each entry is declared in its scheduler's own file.
/// </summary>
/// <remarks>
/// An explicit list rather than reflection over an attribute: the order is part of the output (the
/// "supported:" list of error messages), "find references" on a descriptor leads here, nothing is
/// scanned at start-up, and the library stays safe to trim or AOT-compile.
/// To add a scheduler: write its file with a <c>Descriptor</c> and add one line here.
/// </remarks>
public static class SchedulerRegistry
{
    /// <summary>Every scheduler, in the order error messages list the supported classes.</summary>
    public static IReadOnlyList<SchedulerDescriptor> All { get; } =
    [
        DdimScheduler.Descriptor,
        DdpmScheduler.Descriptor,
        EulerScheduler.Descriptor,
        EulerAncestralScheduler.Descriptor,
        HeunScheduler.Descriptor,
        LmsScheduler.Descriptor,
        PndmScheduler.Descriptor,
        KDpm2Scheduler.Descriptor,
        KDpm2AncestralScheduler.Descriptor,
        DpmSolverMultistepScheduler.Descriptor,
        DpmSolverSinglestepScheduler.Descriptor,
        DeisScheduler.Descriptor,
        UniPcScheduler.Descriptor,
        FlowMatchEulerScheduler.Descriptor,
        DpmPp2sAncestralScheduler.Descriptor,
        RestartScheduler.Descriptor,
        LcmScheduler.Descriptor,
        TcdScheduler.Descriptor,
    ];

    private static readonly Dictionary<string, SchedulerDescriptor> ByClass =
        All.SelectMany(d => d.ClassNames.Select(c => (c, d))).ToDictionary(p => p.c, p => p.d, StringComparer.Ordinal);

    /// <summary>The diffusers scheduler classes the engine implements.</summary>
    public static IReadOnlyList<string> SupportedClasses { get; } = All.SelectMany(d => d.ClassNames).ToArray();

    /// <summary>
    /// Each class's options reader, once per family: a file is checked by all of them. The first ones
    /// keep the order in which a file with several bad keys has always reported the first (solver
    /// keys, skip_prk_steps, variance_type, shift, timestep_type); other classes follow in list order.
    /// </summary>
    public static IReadOnlyList<Func<SchedulerConfigReader, SchedulerDefaults, SchedulerOptions>> OptionReaders { get; } =
        new[] { DpmSolverMultistepScheduler.Descriptor, UniPcScheduler.Descriptor, PndmScheduler.Descriptor, DdpmScheduler.Descriptor,
                FlowMatchEulerScheduler.Descriptor, EulerScheduler.Descriptor }
            .Concat(All).Select(d => d.ReadOptions)
            .OfType<Func<SchedulerConfigReader, SchedulerDefaults, SchedulerOptions>>().Distinct().ToArray();

    /// <summary>Every short sampler name, in the order <c>engine samplers</c> lists them.</summary>
    public static IReadOnlyList<ShortName> ShortNames { get; } =
        All.SelectMany(d => d.ShortNames).OrderBy(s => s.ListOrder).ToArray();

    /// <summary>The scheduler implementing diffusers class <paramref name="className"/>, or null.</summary>
    public static SchedulerDescriptor? Find(string? className) =>
        className is not null && ByClass.TryGetValue(className, out var d) ? d : null;

    /// <summary>
    /// The scheduler implementing <paramref name="className"/>; throws <see cref="SchedulerConfigException"/>
    /// naming the supported classes, its message starting with <paramref name="prefix"/>.
    /// </summary>
    public static SchedulerDescriptor Get(string className, string prefix = "") =>
        Find(className) ?? throw new SchedulerConfigException(
            $"{prefix}_class_name '{className}' is not supported; supported: {string.Join(", ", SupportedClasses)}.");
}
