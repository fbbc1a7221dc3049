using System.Text.Json;

namespace Engine.Tools.Quality;

/// <summary>
/// A sequential image classifier as described by an <c>architecture.json</c> (input shape, layers,
/// class names, weights file). Parsing checks the structure; <see cref="ImageClassifier"/> checks
/// the weights against it.
/// </summary>
public sealed class ClassifierArchitecture
{
    private ClassifierArchitecture(string path, int[] inputShape, IReadOnlyList<ClassifierLayer> layers, IReadOnlyList<string> classes, string weightsFile)
    {
        Path = path; InputShape = inputShape; Layers = layers; Classes = classes; WeightsFile = weightsFile;
    }

    /// <summary>The JSON file this came from.</summary>
    public string Path { get; }

    /// <summary>Per-sample input shape [C, H, W].</summary>
    public int[] InputShape { get; }

    /// <summary>The layers in order.</summary>
    public IReadOnlyList<ClassifierLayer> Layers { get; }

    /// <summary>Class names, index = label.</summary>
    public IReadOnlyList<string> Classes { get; }

    /// <summary>Weights file name, relative to the JSON's folder.</summary>
    public string WeightsFile { get; }

    /// <summary>Reads and validates <paramref name="path"/>.</summary>
    public static ClassifierArchitecture Load(string path)
    {
        string text;
        try { text = File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"{path}: cannot read classifier architecture: {e.Message}", e);
        }
        try
        {
            using var doc = JsonDocument.Parse(text);
            return Parse(path, doc.RootElement);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: invalid JSON: {e.Message}", e);
        }
    }

    private static ClassifierArchitecture Parse(string path, JsonElement root)
    {
        InvalidDataException Bad(string what) => new($"{path}: {what}");

        if (!root.TryGetProperty("input", out var input) || !input.TryGetProperty("shape", out var shapeEl))
            throw Bad("missing input.shape");
        var inputShape = Ints(shapeEl, "input.shape", path);
        if (inputShape.Length != 3 || inputShape.Any(d => d < 1)) throw Bad($"input.shape must be [C, H, W] with positive sizes; got [{string.Join(", ", inputShape)}]");
        if (input.TryGetProperty("layout", out var layout) && layout.GetString() != "NCHW") throw Bad($"input.layout '{layout.GetString()}' is not supported (NCHW only)");

        if (!root.TryGetProperty("layers", out var layersEl) || layersEl.ValueKind != JsonValueKind.Array) throw Bad("missing layers array");
        var layers = new List<ClassifierLayer>();
        int index = 0;
        foreach (var l in layersEl.EnumerateArray())
        {
            string where = $"layers[{index}]";
            string op = l.TryGetProperty("op", out var opEl) ? opEl.GetString() ?? "" : throw Bad($"{where} has no op");
            string? name = l.TryGetProperty("name", out var n) ? n.GetString() : null;
            int[]? weight = l.TryGetProperty("weight", out var w) ? Ints(w, $"{where}.weight", path) : null;
            int[]? bias = l.TryGetProperty("bias", out var b) ? Ints(b, $"{where}.bias", path) : null;
            int[]? outShape = l.TryGetProperty("out", out var o) ? Ints(o, $"{where}.out", path) : null;
            int Int(string key, int fallback) => l.TryGetProperty(key, out var v) ? (v.TryGetInt32(out int i) ? i : throw Bad($"{where}.{key} is not an integer")) : fallback;
            bool features = l.TryGetProperty("features", out _);
            var kind = op switch
            {
                "conv2d" => ClassifierLayerKind.Conv2d,
                "relu" => ClassifierLayerKind.Relu,
                "maxpool2d" => ClassifierLayerKind.MaxPool2d,
                "flatten" => ClassifierLayerKind.Flatten,
                "linear" => ClassifierLayerKind.Linear,
                "dropout" => ClassifierLayerKind.Dropout,
                _ => throw Bad($"{where}: unsupported op '{op}' (supported: conv2d, relu, maxpool2d, flatten, linear, dropout)"),
            };
            if (kind is ClassifierLayerKind.Conv2d or ClassifierLayerKind.Linear)
            {
                if (string.IsNullOrEmpty(name) || weight is null) throw Bad($"{where} ({op}) needs a name and a weight shape");
                int rank = kind == ClassifierLayerKind.Conv2d ? 4 : 2;
                if (weight.Length != rank) throw Bad($"{where} ({name}) weight must have rank {rank}; got [{string.Join(", ", weight)}]");
                if (bias is not null && (bias.Length != 1 || bias[0] != weight[0])) throw Bad($"{where} ({name}) bias must be [{weight[0]}]");
            }
            int kernel = Int("kernel", 0);
            int stride = Int("stride", kind == ClassifierLayerKind.MaxPool2d ? kernel : 1);
            int padding = Int("padding", 0);
            if (kind == ClassifierLayerKind.MaxPool2d && kernel < 1) throw Bad($"{where} (maxpool2d) needs a kernel >= 1");
            if (stride < 1 || padding < 0) throw Bad($"{where}: stride must be >= 1 and padding >= 0");
            layers.Add(new ClassifierLayer(index, kind, name, weight, bias, kernel, stride, padding, outShape, features));
            index++;
        }
        if (layers.Count == 0 || layers[^1].Kind != ClassifierLayerKind.Linear) throw Bad("the last layer must be a linear layer giving the logits");

        var classes = root.TryGetProperty("classes", out var c) && c.ValueKind == JsonValueKind.Array
            ? c.EnumerateArray().Select(e => e.GetString() ?? "").ToArray()
            : Enumerable.Range(0, layers[^1].WeightShape![0]).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        if (classes.Length != layers[^1].WeightShape![0]) throw Bad($"{classes.Length} class names for {layers[^1].WeightShape![0]} logits");
        string weightsFile = root.TryGetProperty("weights_file", out var wf) ? wf.GetString() ?? "" : "model.safetensors";
        if (weightsFile.Length == 0) throw Bad("weights_file is empty");
        return new ClassifierArchitecture(path, inputShape, layers, classes, weightsFile);
    }

    private static int[] Ints(JsonElement e, string what, string path)
    {
        if (e.ValueKind != JsonValueKind.Array) throw new InvalidDataException($"{path}: {what} must be an array of integers");
        return e.EnumerateArray().Select(v => v.TryGetInt32(out int i) ? i : throw new InvalidDataException($"{path}: {what} must hold integers")).ToArray();
    }
}
