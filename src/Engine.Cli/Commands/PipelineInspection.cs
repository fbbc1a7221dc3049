using Engine.Core;
using Engine.Generation.Pipelines;
using Engine.Models;
using Engine.Models.Binding;
using Engine.Models.Loading;
using Engine.Models.Networks;
using Engine.Sampling;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine inspect PIPELINE_DIR</c>: a diffusers pipeline folder's class, whether <c>engine generate</c>
/// runs it, and per component its library, class, folder and weights (tensor and parameter counts).
/// Reads headers only, so it is quick on full-size pipelines.
/// </summary>
internal static class PipelineInspection
{
    // diffusers models save diffusion_pytorch_model.safetensors, transformers ones model.safetensors (each maybe sharded).
    private static readonly string[] WeightFiles = [SafetensorsWeightSource.WeightsFileName, ClipTextModel.WeightsFileName];

    /// <summary>Writes the summary of the pipeline folder <paramref name="folder"/> to <paramref name="o"/>.</summary>
    public static void Write(string folder, TextWriter o)
    {
        var index = PipelineIndex.Load(folder);
        bool runs = PipelineLoader.SupportedClasses.Contains(index.ClassName);
        o.WriteLine($"pipeline: {index.ClassName} ({index.FilePath})");
        o.WriteLine(runs
            ? "supported: yes (engine generate --model runs it)"
            : $"supported: no; engine generate runs {string.Join(", ", PipelineLoader.SupportedClasses)}");
        var rows = new List<string[]>();
        long total = 0;
        foreach (var (name, library, cls) in index.Components)
        {
            if (cls is null)
            {
                rows.Add([name, "-", "none", "-", "saved as None"]);
                continue;
            }
            string dir = Path.Combine(index.Folder, name);
            string contents;
            if (!Directory.Exists(dir)) contents = "MISSING folder";
            else if (Weights(dir) is var (file, tensors, parameters))
            {
                total += parameters;
                contents = $"{tensors} tensors, {parameters:N0} parameters ({file})";
            }
            else contents = string.Join(", ", Directory.EnumerateFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            if (!Loads(cls)) contents += " (class not implemented by the engine)";
            rows.Add([name, library ?? "-", cls, Directory.Exists(dir) ? name + "/" : "-", contents]);
        }
        string[] header = ["component", "library", "class", "folder", "contents"];
        int[] widths = Enumerable.Range(0, header.Length).Select(c => rows.Prepend(header).Max(r => r[c].Length)).ToArray();
        foreach (var r in rows.Prepend(header))
            o.WriteLine(string.Join("  ", r.Select((v, c) => c < widths.Length - 1 ? v.PadRight(widths[c]) : v)));
        o.WriteLine($"{rows.Count} components, {total:N0} parameters in all");
    }

    /// <summary>
    /// Writes what <paramref name="folder"/> holds: a pipeline folder's summary (<see cref="Write"/>), or a single model
    /// folder's class and weights; a folder with neither model_index.json nor config.json is an error naming it.
    /// </summary>
    public static void WriteFolder(string folder, TextWriter o)
    {
        if (PipelineIndex.IsPipelineFolder(folder))
        {
            Write(folder, o);
            return;
        }
        string configPath = Path.Combine(folder, ModelConfig.FileName);
        if (!File.Exists(configPath))
            throw new FileNotFoundException($"{folder}: neither {PipelineIndex.FileName} (a pipeline folder) nor {ModelConfig.FileName} (a model folder).");
        var config = ModelConfig.Load(configPath);
        string cls = config.ClassName.Length > 0 ? config.ClassName : "(no _class_name)";
        o.WriteLine($"model: {cls} ({configPath}){(Loads(cls) ? "" : " (class not implemented by the engine)")}");
        o.WriteLine(Weights(folder) is var (file, tensors, parameters) ? $"weights: {tensors} tensors, {parameters:N0} parameters ({file})" : "weights: none found");
    }

    /// <summary>Whether the engine has an implementation of component class <paramref name="cls"/>.</summary>
    private static bool Loads(string cls) =>
        ModelLoader.SupportedClasses.Contains(cls) || ClipTextModel.SupportedArchitectures.Contains(cls)
        || SchedulerConfig.SupportedClasses.Contains(cls) || cls is "CLIPTokenizer" or "CLIPTokenizerFast";

    /// <summary>The weights file of a model folder with its tensor and parameter counts, or null when it holds none.</summary>
    private static (string File, int Tensors, long Parameters)? Weights(string dir)
    {
        foreach (var name in WeightFiles)
        {
            if (!File.Exists(Path.Combine(dir, name)) && !File.Exists(Path.Combine(dir, name + ".index.json"))) continue;
            using var source = SafetensorsWeightSource.OpenFolder(dir, name);
            long parameters = source.Keys.Sum(k => Tensor.ShapeLength(source.Shape(k)));
            return (File.Exists(Path.Combine(dir, name)) ? name : name + ".index.json", source.Keys.Count, parameters);
        }
        return null;
    }
}
