using Engine.Sampling;
using Engine.Sampling.Guidance;

namespace Engine.Cli;

/// <summary>
/// How images are sampled, as the generate, batch and eval commands take it: sampler and schedule
/// names (or a diffusers scheduler config), steps, guidance scale, guidance/plug-in options and batch
/// size. Names and options are checked before any model is loaded.
/// </summary>
public sealed record SamplingSettings
{
    /// <summary>Sampler name, or null for the default.</summary>
    public string? Sampler { get; init; }

    /// <summary>Schedule name, or null.</summary>
    public string? Schedule { get; init; }

    /// <summary>Path of the scheduler config file, or null.</summary>
    public string? SchedulerConfigPath { get; init; }

    /// <summary>Contents of the scheduler config file, or null.</summary>
    public string? SchedulerConfigJson { get; init; }

    /// <summary>Inference steps.</summary>
    public int Steps { get; init; } = 20;

    /// <summary>Guidance scale.</summary>
    public double Cfg { get; init; } = 3;

    /// <summary>Guidance and plug-in options as <c>key=value</c>.</summary>
    public IReadOnlyList<string> Options { get; init; } = [];

    /// <summary>Images per batch; 0 = automatic.</summary>
    public int Batch { get; init; }

    /// <summary>Device kind, or null for the default.</summary>
    public string? Device { get; init; }

    /// <summary>Storage of Linear and Conv2d weights (<c>--weights</c>).</summary>
    public Engine.Core.DType Weights { get; init; } = Engine.Core.DType.F32;

    /// <summary>
    /// Checks names and options and reads the scheduler config file. Unknown names and options are
    /// usage errors; an unreadable or invalid config file is a failure naming the file.
    /// </summary>
    public SamplingSettings Validated(string command)
    {
        if (SchedulerConfigPath is not null && (Sampler is not null || Schedule is not null))
            throw new UsageException($"{command}: give either --scheduler-config or --sampler/--schedule, not both.");
        if (Sampler is not null && !SamplerNames.Samplers.Any(e => e.Name == Sampler.Trim().ToLowerInvariant()))
            throw new UsageException($"{command}: unknown sampler '{Sampler}'; known: {string.Join(", ", SamplerNames.Samplers.Select(e => e.Name))}.");
        if (Schedule is not null && !SamplerNames.Schedules.Any(e => e.Name == Schedule.Trim().ToLowerInvariant()))
            throw new UsageException($"{command}: unknown schedule '{Schedule}'; known: {string.Join(", ", SamplerNames.Schedules.Select(e => e.Name))}.");
        try
        {
            SamplingOptionCatalog.Parse(Options);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{command}: --option: {e.Message}");
        }
        if (SchedulerConfigPath is null || SchedulerConfigJson is not null) return this;
        string json;
        try { json = File.ReadAllText(SchedulerConfigPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{SchedulerConfigPath}: cannot read scheduler config: {e.Message}", e);
        }
        try { SchedulerConfig.ParseJson(json); }
        catch (Exception e) when (e is SchedulerConfigException or System.Text.Json.JsonException or ArgumentException)
        {
            throw new InvalidDataException($"{SchedulerConfigPath}: {e.Message}", e);
        }
        return this with { SchedulerConfigJson = json };
    }
}
