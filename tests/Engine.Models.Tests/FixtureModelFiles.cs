using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Models.Tests;

/// <summary>Writes edited copies of a fixture model folder into a temporary directory.</summary>
public sealed class FixtureModelFiles : IDisposable
{
    public FixtureModelFiles(string fixture)
    {
        Source = Path.Combine(Fixtures.RequireRoot(), "models", fixture, "model");
        Folder = Path.Combine(Path.GetTempPath(), "engine-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Folder);
        File.Copy(Path.Combine(Source, "config.json"), ConfigPath);
    }

    public string Source { get; }
    public string Folder { get; }
    public string ConfigPath => Path.Combine(Folder, "config.json");
    public string WeightsPath => Path.Combine(Folder, "diffusion_pytorch_model.safetensors");

    /// <summary>Reads the original weights as entries (F32 values).</summary>
    public List<SafetensorsWriter.Entry> ReadEntries()
    {
        using var file = SafetensorsFile.Open(Path.Combine(Source, "diffusion_pytorch_model.safetensors"));
        return file.Tensors.Values.OrderBy(t => t.Begin).Select(t => new SafetensorsWriter.Entry(t.Name, t.Shape.ToArray(), file.ReadFloats(t.Name))).ToList();
    }

    public void WriteWeights(IEnumerable<SafetensorsWriter.Entry> entries) => SafetensorsWriter.Write(WeightsPath, entries);

    public void CopyWeights() => File.Copy(Path.Combine(Source, "diffusion_pytorch_model.safetensors"), WeightsPath, overwrite: true);

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
