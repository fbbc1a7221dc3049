using System.Text.Json;
using Engine.Core.Safetensors;

namespace Engine.Sampling.Tests;

/// <summary>One scheduler fixture: its JSON (config, steps, sensitivity) and tensors.</summary>
public sealed class SchedulerFixture : IDisposable
{
    public SchedulerFixture(string name)
    {
        Name = name;
        Json = Fixtures.Json($"schedulers/{name}.json", SchedulerConfig.SanitizeJson);
        Tensors = Fixtures.Tensors($"schedulers/{name}.safetensors");
        Config = SchedulerConfig.Parse(Json.GetProperty("scheduler_config"), Json.GetProperty("scheduler_class").GetString());
        Steps = Json.GetProperty("num_inference_steps").GetInt32();
        SampleShape = Json.GetProperty("sample_shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
    }

    public string Name { get; }
    public JsonElement Json { get; }
    public SafetensorsFile Tensors { get; }
    public SchedulerConfig Config { get; }
    public int Steps { get; }
    public int[] SampleShape { get; }
    public int SampleLength => SampleShape.Aggregate(1, (a, b) => a * b);

    /// <summary>Row i of a stacked tensor [calls, ...sample].</summary>
    public float[] Row(string tensor, int i)
    {
        var all = Tensors.ReadFloats(tensor);
        return all.AsSpan(i * SampleLength, SampleLength).ToArray();
    }

    public double SensitivityMaxAbs => Json.GetProperty("error_vs_exact").GetProperty("sensitivity_1e-6").GetProperty("max_abs").GetDouble();

    /// <summary>Every scheduler fixture (all JSON files with a scheduler_class), for TestCaseSource.</summary>
    public static IEnumerable<string> All() => Fixtures.Names("schedulers").Where(n => n is not "index" and not "convergence");

    public void Dispose() => Tensors.Dispose();
}
