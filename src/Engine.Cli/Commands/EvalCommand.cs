using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Engine.Core;
using Engine.Generation;
using Engine.Gpu;
using Engine.Tools.Quality;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine eval</c>: generates N images per class and scores them with the built-in classifier:
/// accuracy against the intended class and Frechet distance of the classifier's features to the
/// test set's statistics; <c>--compare</c> prints one row per sampler and step count.
/// </summary>
public sealed class EvalCommand : EngineCommand
{
    private readonly Option<string?> _model = CliOptions.Text("--model", "DIR", $"model folder or built-in model name (default {ModelLocator.DefaultModel})");
    private readonly SamplingOptions _sampling = new();
    private readonly Option<int?> _count = CliOptions.Int("--count", "N", "images per class (required)", 1, 100_000);
    private readonly Option<ulong?> _seed = CliOptions.Seed("--seed", "S", "noise seed (default 0)");
    private readonly Option<List<(string Sampler, int Steps)>?> _compare = CliOptions.Parsed<List<(string Sampler, int Steps)>?>("--compare", "SPEC",
        "rows \"sampler:steps,steps;sampler:steps,...\" instead of one run", ParseCompare);
    private readonly Option<List<List<(string Sampler, int Steps)>>> _run = CliOptions.Repeatable("--run", "SAMPLER:STEPS",
        "one row (repeatable; may be combined with --compare)", ParseCompare);
    private readonly Option<string?> _classifier = CliOptions.PathText("--classifier", "DIR", $"classifier folder (default: built-in {ModelLocator.DefaultClassifier})");
    private readonly Option<string?> _teacher = CliOptions.Text("--teacher", "DIR",
        "sample --model as a distilled student refined by this teacher (Distillation++; NFE then counts student and teacher calls)");
    private readonly Option<bool> _realFloor = CliOptions.Flag("--real-floor",
        "also print the FD real data reaches at about this sample count, from the classifier's metrics.json (real images scored the same way; a floor, not a target)");

    /// <inheritdoc />
    public override string Name => "eval";

    /// <inheritdoc />
    public override string Summary => "score samplers: classifier accuracy and Frechet distance per sampler and NFE";

    /// <inheritdoc />
    protected override IEnumerable<Symbol> Symbols => [_model, .. _sampling.All, _count, _seed, _compare, _run, _classifier, _teacher, _realFloor];

    /// <inheritdoc />
    protected override IEnumerable<Option> RequiredOptions => [_count];

    /// <inheritdoc />
    public override string Usage => """
        usage: engine eval [--model DIR] [sampling options] --count N [--seed S]
                           [--compare "ddim:5,10,20;euler:5,10,20" | --run SAMPLER:STEPS ...] [--real-floor]
        """;

    /// <inheritdoc />
    public override string Details => $$"""
        Generates N images of every class of the classifier (Fashion-MNIST: 10 classes, so 10 N images; image i
        has class i mod 10 and noise sample index i of the seed) and scores them with the classifier in
        models/{{ModelLocator.DefaultClassifier}}: accuracy = fraction classified as their intended class; FD = Frechet
        distance between the Gaussian of the classifier's penultimate features of the samples and that of the
        10,000 test images. Samples are quantised to 8-bit pixels first, exactly as saved PNGs. FD is biased
        upward at small sample counts, so compare rows of the same N only.

        Prints a table: sampler, NFE (network evaluations per image; a guided step is one batched call),
        accuracy, FD, seconds (generation and scoring).
        """;

    /// <inheritdoc />
    public override int Run(ParseResult parse, CommandContext context)
    {
        var settings = _sampling.Read(parse, Name);
        int perClass = parse.GetValue(_count)!.Value; // required: the parser has checked it is there
        ulong seed = parse.GetValue(_seed) ?? 0;
        var rows = new List<(string Sampler, int Steps)>();
        if (parse.GetValue(_compare) is { } compared) rows.AddRange(compared);
        foreach (var run in parse.GetValue(_run) ?? []) rows.AddRange(run);
        if (rows.Count > 0 && (settings.Sampler is not null || settings.SchedulerConfigPath is not null || parse.Has(_sampling.Steps)))
            throw new UsageException($"{Name}: --compare/--run name the samplers and steps; do not also give --sampler, --scheduler-config or --steps.");
        foreach (var (sampler, _) in rows) _ = SamplingSettings.Validated(settings with { Sampler = sampler }, Name);

        string modelPath = ModelLocator.Resolve(parse.GetValue(_model));
        string classifierPath = ModelLocator.Resolve(parse.GetValue(_classifier), ModelLocator.DefaultClassifier);
        using var device = DeviceFactory.Create(settings.Device);
        using var generator = new Generator(device) { WeightStorage = settings.WeightStorage };
        using var model = generator.LoadModel(modelPath);
        using var teacher = parse.GetValue(_teacher) is { } t ? generator.LoadModel(ModelLocator.Resolve(t)) : null;
        using var evaluator = QualityEvaluator.Load(device, classifierPath);
        int classes = evaluator.Classifier.ClassCount;
        if (model.ClassCount != classes)
            throw new InvalidDataException($"model '{modelPath}' has {model.ClassCount} classes; the classifier '{classifierPath}' scores {classes}.");
        int count = perClass * classes;
        if (count < 2) throw new UsageException($"{Name}: the Frechet distance needs at least 2 images; raise --count.");
        var labels = Enumerable.Range(0, count).Select(i => i % classes).ToArray();

        if (rows.Count == 0) rows.Add((settings.SchedulerConfigPath is { } p ? Path.GetFileName(p) : settings.Sampler ?? GenerationRequest.DefaultSampler, settings.Steps));
        var o = context.Output;
        o.WriteLine($"{count} images ({perClass} per class), seed {seed}, cfg {settings.GuidanceScale.ToString(CultureInfo.InvariantCulture)}, model {modelPath}, {device.Name}");
        var results = new List<string>();
        string header = $"{"sampler",-24} {"NFE",5} {"accuracy",9} {"FD",10} {"seconds",9}";
        var meterTotal = rows.Count * count;
        ProgressDisplay.Run(context, Name, meterTotal, rows[0].Steps, meter =>
        {
            foreach (var (sampler, steps) in rows)
            {
                context.Cancellation.ThrowIfCancellationRequested();
                var clock = Stopwatch.StartNew();
                var request = settings with
                {
                    Model = modelPath,
                    Sampler = settings.SchedulerConfigJson is null ? sampler : null,
                    Steps = steps, Seed = seed, Count = count, ClassLabels = labels,
                };
                int batch = request.EffectiveBatchSize;
                var result = generator.Generate(model, request, teacher, meter.For(count, batch), context.Cancellation);
                meter.RequestDone(count);
                var report = evaluator.Evaluate(result.Samples, [result.Count, result.Channels, result.Height, result.Width], labels);
                int batches = (count + batch - 1) / batch;
                string name = teacher is not null ? "distillation++" : model.IsOneStepStudent ? "one-step student"
                    : settings.Schedule is { } s && settings.SchedulerConfigJson is null ? $"{sampler} ({s})" : sampler;
                results.Add($"{name,-24} {result.ModelCalls / batches,5} {(report.Accuracy is { } acc ? $"{acc * 100:F1}%" : "-"),9} {report.FrechetDistance,10:F2} {clock.Elapsed.TotalSeconds,9:F1}");
            }
            return 0;
        });
        o.WriteLine(header);
        foreach (var line in results) o.WriteLine(line);
        if (parse.GetValue(_realFloor)) o.WriteLine(RealFloor(classifierPath, count));
        return ExitCodes.Success;
    }

    /// <summary>Parses <c>"ddim:5,10,20;euler:5"</c> into (sampler, steps) rows; throws <see cref="FormatException"/> naming the bad part.</summary>
    public static List<(string Sampler, int Steps)> ParseCompare(string spec)
    {
        var rows = new List<(string, int)>();
        foreach (var part in spec.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int colon = part.IndexOf(':');
            if (colon <= 0 || colon == part.Length - 1) throw new FormatException($"'{part}' must be SAMPLER:STEPS[,STEPS...] (e.g. ddim:5,10,20).");
            string sampler = part[..colon].Trim();
            foreach (int steps in OptionValues.IntList(part[(colon + 1)..], $"steps of '{sampler}'", 1, 1000)) rows.Add((sampler, steps));
        }
        if (rows.Count == 0) throw new FormatException($"'{spec}' names no sampler runs.");
        return rows;
    }

    /// <summary>
    /// The real-data FD floor from the classifier's metrics.json: the documented FD of real image sets
    /// against the test statistics, for the sample count nearest to <paramref name="count"/>.
    /// </summary>
    public static string RealFloor(string classifierFolder, int count)
    {
        string path = Path.Combine(classifierFolder, "metrics.json");
        if (!File.Exists(path)) return $"real-data floor: unknown ({path} does not exist).";
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        var root = doc.RootElement;
        // (images, key of the mean, key of the spread, description)
        var known = new List<(int N, string Key, string? Std, string What)>
        {
            (64, "fd_real_test64_vs_test_mean", "fd_real_test64_vs_test_std", "random sets of 64 real test images"),
            (64, "fd_real_train64_vs_test_mean", "fd_real_train64_vs_test_std", "random sets of 64 real training images"),
            (10_000, "fd_real_train10k_vs_test", null, "10,000 real training images"),
        };
        var available = known.Where(k => root.TryGetProperty(k.Key, out var v) && v.ValueKind == JsonValueKind.Number).ToList();
        if (available.Count == 0) return $"real-data floor: unknown ({path} lists no fd_real_* entries).";
        int nearest = available.MinBy(k => Math.Abs(Math.Log((double)k.N / count))).N;
        var lines = available.Where(k => k.N == nearest).Select(k =>
        {
            double mean = root.GetProperty(k.Key).GetDouble();
            string spread = k.Std is not null && root.TryGetProperty(k.Std, out var s) ? $" +- {s.GetDouble():F2}" : "";
            return $"  FD of {k.What} vs the test statistics: {mean:F2}{spread} ({k.Key})";
        });
        return $"real-data floor (not computed here: it needs real images; documented in {path} for {nearest} images, the count nearest {count}):\n" +
               string.Join("\n", lines) + "\n  generated samples cannot be expected to score below this at that sample count.";
    }
}
