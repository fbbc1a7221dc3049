using Engine.Generation;
using Engine.Sampling;
using Engine.Sampling.Guidance;

namespace Engine.Cli;

/// <summary>
/// Checks the sampling settings of a <see cref="GenerationRequest"/> as the generate, batch and eval
/// commands take them (from <see cref="SamplingOptions"/>, a job line or a sidecar): sampler and schedule
/// names, guidance/plug-in options, and the scheduler config file, before any model is loaded.
/// </summary>
public static class SamplingSettings
{
    /// <summary>Throws a usage error for an unknown sampler name, naming the nearest available one for ComfyUI names the engine does not run.</summary>
    public static void CheckSampler(string sampler, string command)
    {
        try { SamplerNames.Canonical(sampler); }
        catch (SchedulerConfigException e)
        {
            // "unknown sampler 'x'; known: ..." or "sampler 'x' (ComfyUI) is not available; the nearest available is ...".
            throw new UsageException($"{command}: {char.ToLowerInvariant(e.Message[0])}{e.Message[1..]}");
        }
    }

    /// <summary>
    /// Checks the sampling names and options of <paramref name="request"/> and reads its scheduler config
    /// file into <see cref="GenerationRequest.SchedulerConfigJson"/>. Unknown names and options are usage
    /// errors; an unreadable or invalid config file is a failure naming the file.
    /// </summary>
    public static GenerationRequest Validated(GenerationRequest request, string command)
    {
        var (sampler, schedule, configPath) = (request.Sampler, request.Schedule, request.SchedulerConfigPath);
        if (configPath is not null && (sampler is not null || schedule is not null))
            throw new UsageException($"{command}: give either --scheduler-config or --sampler/--schedule, not both.");
        if (sampler is not null) CheckSampler(sampler, command);
        if (schedule is not null && !SamplerNames.Schedules.Any(e => e.Name == schedule.Trim().ToLowerInvariant()))
            throw new UsageException($"{command}: unknown schedule '{schedule}'; known: {string.Join(", ", SamplerNames.Schedules.Select(e => e.Name))}.");
        try
        {
            SamplingOptionCatalog.Parse(request.Options);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{command}: --option: {e.Message}");
        }
        if (configPath is null || request.SchedulerConfigJson is not null) return request;
        if (Directory.Exists(configPath)) throw new IOException($"{configPath}: --scheduler-config is a folder; expected a scheduler config file (JSON).");
        string json;
        try { json = File.ReadAllText(configPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{configPath}: cannot read scheduler config: {e.Message}", e);
        }
        try { SchedulerConfig.ParseJson(json); }
        catch (Exception e) when (e is SchedulerConfigException or System.Text.Json.JsonException or ArgumentException)
        {
            throw new InvalidDataException($"{configPath}: {e.Message}", e);
        }
        return request with { SchedulerConfigJson = json };
    }
}
