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
    /// <summary>The options every sampling command accepts.</summary>
    public static IReadOnlyList<string> OptionNames { get; } = ["--sampler", "--schedule", "--scheduler-config", "--steps", "--cfg", "--option", "--batch", "--device", "--weights"];

    /// <summary>Help lines for <see cref="OptionNames"/>.</summary>
    public const string HelpLines = """
          --sampler NAME            sampler (default dpmpp_2m; 'engine samplers' lists them)
          --schedule NAME           noise schedule on top of the sampler (karras, exponential, ...)
          --scheduler-config FILE   diffusers scheduler_config.json to sample with instead of --sampler/--schedule
          --steps N                 inference steps (default 20)
          --cfg W                   classifier-free guidance scale (default 3; 1 = conditional model only)
          --option KEY=VALUE        guidance or plug-in option, repeatable ('engine samplers' lists the keys)
          --batch N                 images per model batch (default: automatic, up to 16)
          --device KIND             cpu, cuda, opencl or ilgpu-cpu (default: ENGINE_DEVICE, else the best available)
          --weights TYPE            storage of Linear/Conv2d weights: f32 (default), f16 or bf16 (half the memory;
                                    products still accumulate in float32)
        """;

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

    /// <summary>Reads the sampling options of <paramref name="command"/>.</summary>
    public static SamplingSettings Parse(CommandArguments args, string command)
    {
        var settings = new SamplingSettings
        {
            Sampler = args.Get("--sampler"),
            Schedule = args.Get("--schedule"),
            SchedulerConfigPath = args.Get("--scheduler-config"),
            Steps = OptionValues.Int(args, "--steps", command, 20, 1, 1000),
            Cfg = OptionValues.Number(args, "--cfg", command, 3, 0, 1e6),
            Options = args.GetAll("--option"),
            Batch = OptionValues.Int(args, "--batch", command, 0, 1, 4096),
            Device = OptionValues.Device(args, command),
            Weights = OptionValues.WeightStorage(args, command),
        };
        return settings.Validated(command);
    }

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
