using System.Text.Json;
using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Models.Binding;

/// <summary>
/// Weights of a diffusers folder: <c>diffusion_pytorch_model.safetensors</c>, or the shards listed by
/// <c>diffusion_pytorch_model.safetensors.index.json</c>. Files stay memory-mapped; F32, F16 and
/// BF16 tensors go from the mapping to the device and are converted to float32 there; each is scanned
/// for NaN and infinity on the way (<see cref="NonFiniteScan"/>).
/// </summary>
public sealed class SafetensorsWeightSource : IWeightSource, IDisposable
{
    /// <summary>The weight file name diffusers writes.</summary>
    public const string WeightsFileName = "diffusion_pytorch_model.safetensors";

    private readonly List<SafetensorsFile> _files = [];
    private readonly Dictionary<string, SafetensorsFile> _byKey = new(StringComparer.Ordinal);

    private SafetensorsWeightSource(string description) => Description = description;

    /// <inheritdoc />
    public string Description { get; }

    /// <inheritdoc />
    public IReadOnlyCollection<string> Keys => _byKey.Keys;

    /// <summary>Opens one safetensors file.</summary>
    public static SafetensorsWeightSource OpenFile(string path)
    {
        var source = new SafetensorsWeightSource(path);
        try { source.AddFile(SafetensorsFile.Open(path), null); }
        catch { source.Dispose(); throw; }
        return source;
    }

    /// <summary>
    /// Opens the weights of a model folder (single file or sharded index): diffusers'
    /// <see cref="WeightsFileName"/>, or <paramref name="weightsFileName"/> (transformers' <c>model.safetensors</c>).
    /// </summary>
    public static SafetensorsWeightSource OpenFolder(string folder, string weightsFileName = WeightsFileName)
    {
        var single = Path.Combine(folder, weightsFileName);
        if (File.Exists(single)) return OpenFile(single);
        var index = single + ".index.json";
        if (!File.Exists(index))
            throw new ModelLoadException($"{folder}: no weights found: expected {weightsFileName} or {weightsFileName}.index.json.", ModelLoadFailure.NotFound);
        var source = new SafetensorsWeightSource(index);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(index));
            if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"{index}: missing object 'weight_map'.");
            var shards = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                var file = entry.Value.GetString() ?? throw new ModelLoadException($"{index}: weight_map entry '{entry.Name}' is not a file name.");
                if (file.Contains('/') || file.Contains('\\')) throw new ModelLoadException($"{index}: shard name '{file}' must be a plain file name.");
                if (!shards.TryGetValue(file, out var keys)) shards[file] = keys = [];
                keys.Add(entry.Name);
            }
            foreach (var (file, keys) in shards)
            {
                var shard = SafetensorsFile.Open(Path.Combine(folder, file));
                source.AddFile(shard, keys);
            }
        }
        catch (JsonException e) { source.Dispose(); throw new ModelLoadException($"{index}: not valid JSON: {e.Message}", e); }
        catch { source.Dispose(); throw; }
        return source;
    }

    private void AddFile(SafetensorsFile file, List<string>? expectedKeys)
    {
        _files.Add(file);
        foreach (var key in file.Tensors.Keys)
        {
            if (!_byKey.TryAdd(key, file))
                throw new ModelLoadException($"{file.Path}: tensor '{key}' also appears in {_byKey[key].Path}.");
        }
        if (expectedKeys is not null)
        {
            var absent = expectedKeys.Where(k => !file.Contains(k)).ToList();
            if (absent.Count > 0)
                throw new ModelLoadException($"{file.Path}: the index lists {absent.Count} tensors this shard lacks, e.g. '{absent[0]}'.");
        }
    }

    /// <inheritdoc />
    public int[] Shape(string key) => (int[])_byKey[key].Info(key).Shape.Clone();

    /// <inheritdoc />
    public Tensor Load(Device device, string key) => Load(device, key, DType.F32);

    /// <inheritdoc />
    public Tensor Load(Device device, string key, DType dtype)
    {
        var file = _byKey[key];
        if (file.Info(key).DeviceType is null)
            throw new ModelLoadException($"{file.Path}: tensor '{key}' is stored as {file.Info(key).Type}; model weights must be F32, F16 or BF16.");
        // One NaN or infinite weight makes every image NaN: refuse it here, naming the tensor, not after sampling.
        if (file.Info(key).ByteLength <= int.MaxValue && NonFiniteScan.FirstNonFinite(file.GetBytes(key), file.Info(key).Type) is var bad and >= 0)
            throw new ModelLoadException($"{file.Path}: tensor '{key}' holds NaN or infinity (element {bad}); the weights are corrupt.");
        var tensor = file.Load(device, key, dtype);
        // Each weight is read once: its mapped pages leave the resident set now rather than when the whole file is
        // unmapped, so a component's mapped file is not counted beside its copy while it loads (a later read of the
        // key maps them again from the page cache).
        if (file.Info(key).ByteLength <= int.MaxValue) Checkpoints.MappedPages.Release(file.GetBytes(key));
        return tensor;
    }

    /// <summary>Unmaps every file.</summary>
    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
    }
}
