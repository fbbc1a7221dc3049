using System.Text;
using Engine.Cli;
using Engine.Core.Safetensors;
using Engine.Jobs;
using Engine.Models;
using Engine.Models.Binding;
using Engine.Models.Loading;
using Engine.Sampling;

namespace Engine.Fuzz;

/// <summary>
/// The fuzz targets: each feeds one input to a reader of user files and lets through only the error
/// type that reader documents (which the CLI prints as a one-line message with exit 1 or 2). Any other
/// exception, a hang or an abort is a finding. Shared by the AFL++ harness and the corpus replay test.
/// </summary>
public static class FuzzTargets
{
    /// <summary>Target names, as the harness and the corpus folders spell them.</summary>
    public static IReadOnlyList<string> Names { get; } = ["safetensors", "config", "scheduler", "jobline", "sidecar"];

    /// <summary>Runs target <paramref name="name"/> on <paramref name="input"/>; throws only on a finding.</summary>
    public static void Run(string name, byte[] input)
    {
        switch (name)
        {
            case "safetensors": Safetensors(input); break;
            case "config": Config(input); break;
            case "scheduler": Scheduler(input); break;
            case "jobline": JobLines(input); break;
            case "sidecar": Sidecar(input); break;
            default: throw new ArgumentException($"unknown fuzz target '{name}'; known: {string.Join(", ", Names)}.", nameof(name));
        }
    }

    private static string Text(byte[] input) => Encoding.UTF8.GetString(input);

    // Readers that take a path get the input through one scratch file per process.
    private static string Scratch(byte[] input, string extension)
    {
        string path = Path.Combine(Path.GetTempPath(), $"engine-fuzz-{Environment.ProcessId}{extension}");
        File.WriteAllBytes(path, input);
        return path;
    }

    private static void Safetensors(byte[] input)
    {
        try
        {
            using var file = SafetensorsFile.Open(Scratch(input, ".safetensors"));
            foreach (var info in file.Tensors.Values)
                if (info.ByteLength <= 1 << 20) file.ReadFloats(info.Name);
        }
        catch (SafetensorsException) { }
    }

    private static void Config(byte[] input)
    {
        try
        {
            var config = ModelConfig.Parse(Text(input), "fuzz config.json");
            using var network = ModelLoader.Build(config, FixtureHeaders.For(config.ClassName));
        }
        catch (ModelLoadException) { }
    }

    private static void Scheduler(byte[] input)
    {
        SchedulerConfig config;
        try { config = SchedulerConfig.ParseJson(Text(input)); }
        catch (SchedulerConfigException) { return; }
        foreach (int steps in (int[])[1, 2, 25])
        {
            // Schedulers refuse a step count they cannot serve (more steps than training timesteps) with an
            // ArgumentException of their own, which the CLI prints; one thrown by the runtime is a finding.
            try { using var scheduler = SchedulerFactory.Create(config, steps); }
            catch (ArgumentException e) when (ThrownByEngine(e)) { }
        }
    }

    private static bool ThrownByEngine(Exception e) =>
        e is SchedulerConfigException || e.TargetSite?.DeclaringType?.Namespace?.StartsWith("Engine", StringComparison.Ordinal) == true;

    private static void JobLines(byte[] input)
    {
        var result = JobFile.Read(new StringReader(Text(input)), "fuzz.jsonl");
        foreach (var job in result.Jobs)
        {
            _ = job.Images();
            // Validation reads a named scheduler config file: a missing or bad one is the file's error, by design.
            try { SamplingSettings.Validated(job.ToRequest(), "batch"); }
            catch (Exception e) when (e is UsageException or IOException or InvalidDataException) { }
        }
    }

    private static void Sidecar(byte[] input)
    {
        string path = Scratch(input, ".json");
        try
        {
            var request = ImageSidecar.Read(path).ToRequest(path);
            SamplingSettings.Validated(request, "generate");
        }
        catch (Exception e) when (e is InvalidDataException or UsageException) { }
    }
}
