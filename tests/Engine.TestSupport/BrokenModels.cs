using System.Text.Json.Nodes;
using Engine.Core.Safetensors;

namespace Engine.TestSupport;

/// <summary>
/// Copies of the built-in fmnist-unet model folder with one thing wrong, as a careless download or a bad
/// edit would leave them: for tests of load-time errors, status codes and non-finite outputs.
/// </summary>
public static class BrokenModels
{
    /// <summary>The weight file of a diffusers model folder.</summary>
    public const string Weights = "diffusion_pytorch_model.safetensors";

    /// <summary>Copies models/fmnist-unet into <paramref name="folder"/> (created) and returns it.</summary>
    public static string Copy(string folder)
    {
        Directory.CreateDirectory(folder);
        foreach (var file in Directory.GetFiles(Path.Combine(TestPaths.Models, "fmnist-unet")))
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)), overwrite: true);
        return folder;
    }

    /// <summary>Sets one config.json field of the copy to a JSON value.</summary>
    public static string WithConfig(string folder, string key, JsonNode? value)
    {
        Copy(folder);
        string path = Path.Combine(folder, "config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        config[key] = value;
        File.WriteAllText(path, config.ToJsonString());
        return folder;
    }

    /// <summary>Rewrites the copy's weights through <paramref name="edit"/> (name, shape and values of every tensor).</summary>
    public static string WithWeights(string folder, Func<List<SafetensorsWriter.Entry>, IEnumerable<SafetensorsWriter.Entry>> edit)
    {
        Copy(folder);
        string path = Path.Combine(folder, Weights);
        var entries = new List<SafetensorsWriter.Entry>();
        using (var file = SafetensorsFile.Open(path))
            foreach (var name in file.Tensors.Keys.Order(StringComparer.Ordinal))
                entries.Add(new(name, file.Info(name).Shape.ToArray(), file.ReadFloats(name)));
        SafetensorsWriter.Write(path, edit(entries).ToList());
        return folder;
    }

    /// <summary>The copy with a NaN as the first element of tensor <paramref name="tensor"/>.</summary>
    public static string WithNaNWeight(string folder, string tensor) => WithWeights(folder, entries =>
    {
        var entry = entries.Single(e => e.Name == tensor);
        entry.Data[0] = float.NaN;
        return entries;
    });

    /// <summary>
    /// The copy with conv_out.weight at +-3e38: finite weights (the load accepts them) whose output overflows
    /// float32 in the first forward, so the samples go non-finite at step 1.
    /// </summary>
    public static string Overflowing(string folder) => WithWeights(folder, entries =>
    {
        var entry = entries.Single(e => e.Name == "conv_out.weight");
        for (int i = 0; i < entry.Data.Length; i++) entry.Data[i] = entry.Data[i] >= 0 ? 3e38f : -3e38f;
        return entries;
    });

    /// <summary>A tensor name of the fmnist-unet weights.</summary>
    public const string SomeTensor = "conv_in.weight";
}
