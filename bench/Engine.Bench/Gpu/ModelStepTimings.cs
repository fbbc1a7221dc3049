using System.Diagnostics;
using System.Globalization;
using Engine.Core;
using Engine.Core.Profiling;
using Engine.Core.Safetensors;
using Engine.Gpu;
using Engine.Models.Loading;
using Engine.Models.Networks;

namespace Engine.Bench.Gpu;

/// <summary>
/// <c>Engine.Bench --model-step DIR --inputs IN.safetensors [--output OUT.safetensors] [--device cuda]
/// [--precision f16,f32] [--weights f16] [--runs N] [--out FILE] [--profile FILE]</c>: one denoiser step of a full-size model
/// (issue 16's SD 1.5 UNet and DiT-XL-2 targets). Loads the folder once, then for each activation precision
/// runs the forward on the inputs (<c>sample</c> or <c>hidden_states</c>, <c>timestep</c>,
/// <c>encoder_hidden_states</c>, <c>class_labels</c>, as <c>bench/gpu/model_step_peers.py</c> writes them): the
/// first pass (kernel compilation included) timed alone, one more warm-up, then the median, minimum and maximum
/// of <c>N</c> synchronised passes. Writes each precision's output as <c>output_PRECISION</c> so the peer
/// script can compare it with diffusers', and a markdown row per precision. With <c>--profile</c>, one more pass per
/// precision runs under the op profiler (the device synchronised after each op) and its table is appended to FILE.
/// </summary>
public static class ModelStepTimings
{
    public static int Run(string[] args)
    {
        string? Arg(string name) { int i = Array.IndexOf(args, name); return i >= 0 && i + 1 < args.Length ? args[i + 1] : null; }
        string folder = Arg("--model-step") ?? throw new ArgumentException("--model-step DIR is required");
        string inputs = Arg("--inputs") ?? throw new ArgumentException("--inputs FILE is required");
        string? output = Arg("--output"), outFile = Arg("--out"), profileFile = Arg("--profile");
        int runs = int.Parse(Arg("--runs") ?? "10", CultureInfo.InvariantCulture);
        var precisions = (Arg("--precision") ?? "f16").Split(',').Select(Storage).ToArray();
        var weights = Storage(Arg("--weights") ?? "f16");

        using var device = DeviceFactory.Create(Arg("--device") ?? "cuda");
        var load = Stopwatch.StartNew();
        using var model = ModelLoader.LoadDenoiser(device, folder, weights);
        device.Synchronize();
        Console.WriteLine($"{Path.GetFileName(folder.TrimEnd('/'))}: {model.Config.ClassName} loaded on {device.Name} in {load.Elapsed.TotalSeconds:F1} s (weights {weights.StorageName()})");

        using var file = SafetensorsFile.Open(inputs);
        var owned = new List<Tensor>();
        Tensor? Input(string name) =>
            file.Contains(name) ? Keep(device.Upload(file.ReadFloats(name), file.Info(name).Shape.ToArray())) : null;
        Tensor Keep(Tensor t) { owned.Add(t); return t; }
        var sample = Input("sample") ?? Input("hidden_states") ?? throw new InvalidDataException($"{inputs}: no 'sample' or 'hidden_states'");
        var timestep = Input("timestep") ?? throw new InvalidDataException($"{inputs}: no 'timestep'");
        var labels = model.ClassCount is not null ? Input("class_labels") : null;
        var context = model.NeedsEncoderHiddenStates ? Input("encoder_hidden_states") : null;

        var rows = new List<string>();
        var results = new List<SafetensorsWriter.Entry>();
        try
        {
            foreach (var precision in precisions)
            {
                model.Activations = precision;
                var first = Stopwatch.StartNew();
                var y = model.Forward(sample, timestep, labels, context);
                device.Synchronize();
                double firstMs = first.Elapsed.TotalMilliseconds;
                results.Add(new SafetensorsWriter.Entry($"output_{precision.StorageName()}", y.ShapeArray(), y.ToArray()));
                y.Dispose();
                model.Forward(sample, timestep, labels, context).Dispose();
                device.Synchronize();
                var times = new double[runs];
                for (int r = 0; r < runs; r++)
                {
                    var sw = Stopwatch.StartNew();
                    model.Forward(sample, timestep, labels, context).Dispose();
                    device.Synchronize();
                    times[r] = sw.Elapsed.TotalMilliseconds;
                }
                if (profileFile is not null)
                {
                    var profiler = new OpProfiler();
                    device.Profiler = profiler;
                    try
                    {
                        model.Forward(sample, timestep, labels, context).Dispose();
                        device.Synchronize();
                    }
                    finally { device.Profiler = null; }
                    File.AppendAllText(profileFile, $"{model.Config.ClassName} {Tensor.ShapeString(sample.ShapeArray())}, {precision.StorageName()} activations, on {device.Name}\n\n{profiler.Snapshot().Format()}\n");
                }
                Array.Sort(times);
                double median = runs % 2 == 1 ? times[runs / 2] : 0.5 * (times[runs / 2 - 1] + times[runs / 2]);
                string row = $"| {model.Config.ClassName} | {Tensor.ShapeString(sample.ShapeArray())} | {precision.StorageName()} | {median:F2} | {times[0]:F2}-{times[^1]:F2} | {firstMs:F0} |";
                Console.WriteLine(row);
                rows.Add(row);
            }
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
        if (output is not null) SafetensorsWriter.Write(output, results);
        if (outFile is not null)
        {
            var lines = new List<string>
            {
                $"Engine step on {device.Name}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, weights {weights.StorageName()}, {runs} timed passes after two",
                "",
                "| model | sample | activations | median ms | range ms | first pass ms |",
                "|---|---|---|---:|---:|---:|",
            };
            lines.AddRange(rows);
            File.AppendAllLines(outFile, lines.Append(""));
        }
        return 0;
    }

    private static DType Storage(string text) =>
        DTypeExtensions.TryParseStorage(text, out var dtype) ? dtype : throw new ArgumentException($"unknown storage '{text}'; supported: {DTypeExtensions.StorageNames}");
}
