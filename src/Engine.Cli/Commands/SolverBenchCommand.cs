using System.CommandLine;
using System.Text.Json;
using Engine.Core;
using Engine.Gpu;
using Engine.Sampling;
using Engine.Tools;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine solver-bench</c>: runs solvers on the analytic Gaussian model, whose exact
/// probability-flow ODE solution is known, and reports the error (one run with its tensors written,
/// or an error-vs-steps table).
/// </summary>
public sealed class SolverBenchCommand : EngineCommand
{
    private readonly Option<string?> _gaussian = CliOptions.PathText("--gaussian", "FILE", "Gaussian spec (safetensors)");
    private readonly Option<List<string>> _schedulerConfig = CliOptions.Repeatable("--scheduler-config", "FILE", "diffusers scheduler config to run (repeatable)", text => text);
    private readonly Option<string?> _samplers = CliOptions.Text("--samplers", "A,B,...",
        "sampler names ('engine samplers') on the Gaussian's training schedule: the --scheduler-config if one is given, " +
        "else the constructor_kwargs in the JSON beside the Gaussian file (fixtures have one); ComfyUI's names take only the training schedule from it");
    private readonly Option<string?> _schedule = CliOptions.Text("--schedule", "NAME", "schedule for --samplers (normal, karras, exponential, ...; ComfyUI's grid with ComfyUI's names)");
    private readonly Option<int[]?> _steps = CliOptions.Parsed<int[]?>("--steps", "N[,N...]",
        "inference steps; an item may be a range FIRST:LAST[:STEP] (10:40 is every count from 10 to 40)", text => OptionValues.IntRanges(text, "--steps", 1, 10_000));
    private readonly Option<double?> _eta = CliOptions.Eta();
    private readonly Option<int[]?> _timesteps = CliOptions.Timesteps();
    private readonly Option<string?> _output = CliOptions.PathText("--output", "FILE", "(single run) where to write final, exact and error");
    private readonly Option<bool> _exactSigma = CliOptions.Flag("--exact-sigma",
        "the model uses the sampler's own noise level rather than the integer timestep (removes timestep rounding, so convergence orders show cleanly)");
    private readonly Option<string?> _device = CliOptions.Device("cpu, cuda, opencl or ilgpu-cpu");

    /// <inheritdoc />
    public override string Name => "solver-bench";

    /// <inheritdoc />
    public override string Summary => "measure solver error against the exact ODE solution of an analytic Gaussian";

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_gaussian, _schedulerConfig, _samplers, _schedule, _steps, _eta, _timesteps, _output, _exactSigma, _device];

    /// <inheritdoc />
    protected override IEnumerable<Option> RequiredOptions => [_gaussian, _steps];

    /// <inheritdoc />
    public override string Usage => """
        usage: engine solver-bench --gaussian G.safetensors --scheduler-config CFG.json --steps N [--output OUT.safetensors]
               engine solver-bench --gaussian G.safetensors --scheduler-config A.json [--scheduler-config B.json ...] --steps 5,10,20,40
               engine solver-bench --gaussian G.safetensors --samplers euler,dpmpp_2m,unipc [--schedule karras] --steps 5,10,20,40
               engine solver-bench --gaussian G.safetensors --scheduler-config TCD.json --steps 4 --eta 0.3 [--timesteps 999,599,90,19]
        """;

    /// <inheritdoc />
    public override string Details => """
        The Gaussian spec (tensors mu, s and noise [B, ...] or x_T; the schedulers fixtures are such files) defines
        a data distribution whose denoiser and exact ODE solution are known in closed form. Each solver runs
        from the spec's noise and is compared with the exact solution.
        Stochastic samplers take their draws from the spec's step_noise [K, ...] when it has one (draw k for
        the k-th noise request), else from the Philox generator with seed 0.
        One solver and one step count: prints the RMS and max |error| and, with --output, writes tensors final,
        exact and error (final - exact). A spec with step_noise [K, ...] gives the draws of a stochastic sampler,
        consumed in order (diffusers' draws, including those multiplied by zero; K may be 0); too few is an error
        before the run. Without it stochastic samplers draw from the engine's seeded stream (seed 0).
        Several solvers or step counts: prints RMS error per step count and
        the empirical order, the slope of log error against log steps: 'order' between the first and last
        step counts, 'fitted' by least squares through all of them (give many step counts, e.g.
        --steps 10:40, for a reading that one outlying end point cannot move).
        """;

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        // Required options: the parser has checked they are there.
        string gaussian = parse.GetValue(_gaussian)!;
        var steps = parse.GetValue(_steps)!;
        var configs = parse.GetValue(_schedulerConfig) ?? [];
        string? samplerList = parse.GetValue(_samplers);
        string? schedule = parse.GetValue(_schedule);
        bool exact = parse.GetValue(_exactSigma);
        string? kind = parse.GetValue(_device);
        if (configs.Count == 0 && samplerList is null) throw new UsageException($"{Name}: give --scheduler-config or --samplers (see 'engine {Name} --help').");
        if (samplerList is not null && configs.Count > 1) throw new UsageException($"{Name}: with --samplers give at most one --scheduler-config (the training schedule).");
        if (schedule is not null && samplerList is null) throw new UsageException($"{Name}: --schedule goes with --samplers.");
        OutputPaths.RequireFile(gaussian, "Gaussian spec (--gaussian)");
        if (parse.GetValue(_output) is { } outputFile) OutputPaths.RequireWritableFile(outputFile, "--output");
        double? eta = parse.GetValue(_eta);
        int[]? timesteps = parse.Has(_timesteps) ? parse.GetValue(_timesteps) : null;
        if (timesteps is not null && (steps.Length != 1 || steps[0] != timesteps.Length))
            throw new UsageException($"{Name}: --timesteps lists {timesteps.Length} timesteps; --steps must be that one count.");
        SchedulerConfig WithCall(SchedulerConfig c) => c with { Eta = eta, CustomTimesteps = timesteps };

        var solvers = new List<(string Name, Func<int, Scheduler> Create)>();
        if (samplerList is not null)
        {
            var names = samplerList.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
            if (names.Length == 0) throw new UsageException($"{Name}: --samplers names no sampler.");
            foreach (var n in names) SamplingSettings.CheckSampler(n, Name);
            if (schedule is not null && !SamplerNames.Schedules.Any(e => e.Name == schedule.ToLowerInvariant()))
                throw new UsageException($"{Name}: unknown schedule '{schedule}'; known: {string.Join(", ", SamplerNames.Schedules.Select(e => e.Name))}.");
            var training = WithCall(configs.Count == 1 ? LoadConfig(configs[0]) : GaussianSchedule(gaussian));
            foreach (var n in names)
            {
                string label = schedule is null ? n : $"{n} ({schedule})";
                SamplerNames.Resolve(training, n, schedule);
                solvers.Add((label, s => SamplerNames.Create(training, n, schedule, s)));
            }
        }
        else
        {
            foreach (var path in configs)
            {
                var config = WithCall(LoadConfig(path));
                solvers.Add((Path.GetFileNameWithoutExtension(path), s => SchedulerFactory.Create(config, s)));
            }
        }

        using var device = DeviceFactory.Create(kind);
        var o = context.Output;
        if (solvers.Count == 1 && steps.Length == 1)
        {
            using var scheduler = solvers[0].Create(steps[0]);
            var r = SolverBench.Run(scheduler, solvers[0].Name, gaussian, device, exact);
            o.WriteLine($"{r.Solver}: {r.Steps} steps, {r.ModelCalls} model calls, rms error {r.RmsError:E4}, max |error| {r.MaxAbsError:E4}");
            if (parse.GetValue(_output) is { } output)
            {
                r.WriteOutput(output);
                o.WriteLine($"wrote final, exact, error {Tensor.ShapeString(r.Shape)} to {output}");
            }
            return ExitCodes.Success;
        }
        if (parse.Has(_output)) throw new UsageException($"{Name}: --output is for a single run (one solver, one step count).");
        var rows = SolverBench.Table(solvers, steps, gaussian, device, exact);
        o.WriteLine($"RMS error vs exact ODE solution on {Path.GetFileName(gaussian)} ({(exact ? "exact-sigma model" : "timestep model")}, {device.Name}):");
        o.Write(SolverBench.Format(rows));
        return ExitCodes.Success;
    }

    private static SchedulerConfig LoadConfig(string path)
    {
        OutputPaths.RequireFile(path, "scheduler config (--scheduler-config)");
        try { return SchedulerConfig.Load(path); }
        catch (Exception e) when (e is JsonException or SchedulerConfigException)
        {
            throw new InvalidDataException($"{path}: {e.Message}", e);
        }
    }

    /// <summary>The training schedule recorded beside a Gaussian fixture (scheduler_class + constructor_kwargs).</summary>
    private static SchedulerConfig GaussianSchedule(string gaussian)
    {
        string json = Path.ChangeExtension(gaussian, ".json");
        if (!File.Exists(json)) throw new FileNotFoundException($"{gaussian}: no {Path.GetFileName(json)} beside it to take the training schedule from; give --scheduler-config.");
        // Fixture files are written by Python, which spells non-finite numbers as bare NaN/Infinity; JSON has no such values.
        string text = System.Text.RegularExpressions.Regex.Replace(File.ReadAllText(json), @"(?<=[:\[,]\s*)(-?Infinity|NaN)(?=\s*[,\]}])", "null");
        using var doc = JsonDocument.Parse(text);
        if (!doc.RootElement.TryGetProperty("constructor_kwargs", out var kwargs) || kwargs.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{json}: no 'constructor_kwargs' object; give --scheduler-config.");
        string? cls = doc.RootElement.TryGetProperty("scheduler_class", out var c) ? c.GetString() : null;
        try { return SchedulerConfig.ParseJson(kwargs.GetRawText(), cls); }
        catch (SchedulerConfigException e) { throw new InvalidDataException($"{json}: {e.Message}", e); }
    }
}
