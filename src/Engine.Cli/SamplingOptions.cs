using System.CommandLine;
using Engine.Generation;
using Engine.Sampling;

namespace Engine.Cli;

/// <summary>
/// The sampling options of the generate and eval commands (sampler, schedule or scheduler config,
/// steps, guidance scale, guidance/plug-in options, batch size, device, weight storage) and how they
/// map onto a <see cref="GenerationRequest"/>. One instance per command.
/// </summary>
public sealed class SamplingOptions
{
    /// <summary><c>--sampler NAME</c>.</summary>
    public Option<string?> Sampler { get; } = WithCompletions(
        CliOptions.Text("--sampler", "NAME", "sampler (default dpmpp_2m; ComfyUI's names mean what ComfyUI means; 'engine samplers' lists them with their convention)"), SamplerNames.Samplers.Select(e => e.Name));

    /// <summary><c>--schedule NAME</c>.</summary>
    public Option<string?> Schedule { get; } = WithCompletions(
        CliOptions.Text("--schedule", "NAME", "noise schedule (normal, karras, exponential, sgm_uniform, simple, ddim_uniform, beta; ComfyUI's grid with ComfyUI's sampler names)"), SamplerNames.Schedules.Select(e => e.Name));

    /// <summary><c>--scheduler-config FILE</c>.</summary>
    public Option<string?> SchedulerConfig { get; } =
        CliOptions.PathText("--scheduler-config", "FILE", "diffusers scheduler_config.json to sample with instead of --sampler/--schedule");

    /// <summary><c>--steps N</c>.</summary>
    public Option<int?> Steps { get; } = CliOptions.Int("--steps", "N", "inference steps (default 20)", 1, 1000);

    /// <summary><c>--eta G</c>.</summary>
    public Option<double?> Eta { get; } = CliOptions.Eta();

    /// <summary><c>--timesteps T1,T2,...</c>.</summary>
    public Option<int[]?> Timesteps { get; } = CliOptions.Timesteps();

    /// <summary><c>--cfg W</c>.</summary>
    public Option<double?> Cfg { get; } = CliOptions.Number("--cfg", "W", "classifier-free guidance scale (default 3; 1 = conditional model only)", 0, 1e6);

    /// <summary><c>--option KEY=VALUE</c>, repeatable.</summary>
    public Option<List<string>> Option { get; } =
        CliOptions.Repeatable("--option", "KEY=VALUE", "guidance or plug-in option, repeatable ('engine samplers' lists the keys)", text => text);

    /// <summary><c>--batch N</c>.</summary>
    public Option<int?> Batch { get; } = CliOptions.Int("--batch", "N", "images per model batch (default: automatic, up to 16)", 1, 4096);

    /// <summary><c>--device KIND</c>.</summary>
    public Option<string?> Device { get; } = CliOptions.Device("cpu, cuda, opencl or ilgpu-cpu (default: ENGINE_DEVICE, else the best available)");

    /// <summary><c>--weights TYPE</c>.</summary>
    public Option<Engine.Core.DType?> Weights { get; } = CliOptions.Weights(
        "storage of Linear/Conv2d weights: f32 (default), f16 or bf16 (half the memory; products still accumulate in float32)");

    /// <summary><c>--precision TYPE</c>.</summary>
    public Option<Engine.Core.DType?> Precision { get; } = CliOptions.Precision(PrecisionHelp);

    /// <summary>Help text of <c>--precision</c> (generate and forward).</summary>
    public const string PrecisionHelp =
        "activations of the networks: f16, bf16 or f32 (default: f16 on cuda, f32 elsewhere; the cpu device takes f32 only; products accumulate in float32)";

    /// <summary><c>--compute MODE</c>.</summary>
    public Option<Engine.Core.ComputeMode?> Compute { get; } = CliOptions.Compute();

    /// <summary>The options in help order.</summary>
    public IEnumerable<Option> All => [Sampler, Schedule, SchedulerConfig, Steps, Eta, Timesteps, Cfg, Option, Batch, Device, Weights, Precision, Compute];

    /// <summary>The request the command line gives, checked (<see cref="SamplingSettings.Validated"/>) and with the scheduler config read.</summary>
    public GenerationRequest Read(ParseResult parse, string command)
    {
        // Custom timesteps fix the step count: --steps may be left out, or must agree.
        int[]? timesteps = parse.Has(Timesteps) ? parse.GetValue(Timesteps) : null;
        int? steps = parse.GetValue(Steps);
        if (timesteps is not null && steps is { } n && n != timesteps.Length)
            throw new UsageException($"{command}: --timesteps lists {timesteps.Length} timesteps but --steps is {n}.");
        return SamplingSettings.Validated(new GenerationRequest
        {
            Sampler = parse.GetValue(Sampler),
            Schedule = parse.GetValue(Schedule),
            SchedulerConfigPath = parse.GetValue(SchedulerConfig),
            Steps = timesteps?.Length ?? steps ?? GenerationRequest.DefaultSteps,
            Eta = parse.GetValue(Eta),
            Timesteps = timesteps,
            GuidanceScale = parse.GetValue(Cfg) ?? GenerationRequest.DefaultGuidanceScale,
            Options = parse.GetValue(Option) ?? [],
            BatchSize = parse.GetValue(Batch) ?? 0,
            Device = parse.GetValue(Device),
            WeightStorage = parse.GetValue(Weights) ?? Engine.Core.DType.F32,
            Precision = parse.GetValue(Precision),
            Compute = parse.GetValue(Compute) ?? Engine.Core.ComputeMode.F32,
        }, command);
    }

    private static Option<string?> WithCompletions(Option<string?> option, IEnumerable<string> names)
    {
        option.CompletionSources.Add([.. names]);
        return option;
    }
}
