using Engine.Core;
using Engine.Core.Safetensors;

namespace Engine.Tools.Quality;

/// <summary>
/// A sequential CNN classifier (such as <c>models/fmnist-classifier</c>) run on a <see cref="Device"/>
/// with its ops: Conv2d, Activate(Relu), Linear, and max pooling composed from device ops
/// (<see cref="DeviceMaxPool"/>). Layer list, shapes and weight names come from the folder's
/// <c>architecture.json</c>; the weights file must match it exactly.
/// </summary>
public sealed class ImageClassifier : IDisposable
{
    /// <summary>Name of the architecture file inside a classifier folder.</summary>
    public const string ArchitectureFileName = "architecture.json";

    private readonly Dictionary<string, Tensor> _weights;
    private readonly int[][] _outShapes; // per-sample output shape of each layer
    private readonly int _featureLayer;   // index of the layer whose output is the feature vector
    private bool _disposed;

    private ImageClassifier(Device device, ClassifierArchitecture architecture, Dictionary<string, Tensor> weights, int[][] outShapes, int featureLayer)
    {
        Device = device; Architecture = architecture; _weights = weights; _outShapes = outShapes; _featureLayer = featureLayer;
    }

    /// <summary>The device the classifier runs on.</summary>
    public Device Device { get; }

    /// <summary>The parsed architecture.</summary>
    public ClassifierArchitecture Architecture { get; }

    /// <summary>Number of classes (logits).</summary>
    public int ClassCount => _outShapes[^1][0];

    /// <summary>Length of the feature vector.</summary>
    public int FeatureSize => _outShapes[_featureLayer].Aggregate(1, (a, b) => a * b);

    /// <summary>
    /// Loads the classifier in <paramref name="folder"/> (<c>architecture.json</c> and its weights file)
    /// onto <paramref name="device"/>, checking every declared shape against the weights and against
    /// the shapes the layers compute.
    /// </summary>
    public static ImageClassifier Load(Device device, string folder)
    {
        ArgumentNullException.ThrowIfNull(device);
        var architecture = ClassifierArchitecture.Load(Path.Combine(folder, ArchitectureFileName));
        var outShapes = InferShapes(architecture);
        int featureLayer = FeatureLayer(architecture);
        string weightsPath = Path.Combine(folder, architecture.WeightsFile);
        var weights = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            using var file = SafetensorsFile.Open(weightsPath);
            var expected = new HashSet<string>(StringComparer.Ordinal);
            foreach (var layer in architecture.Layers.Where(l => l.Kind is ClassifierLayerKind.Conv2d or ClassifierLayerKind.Linear))
            {
                Bind(file, weightsPath, $"{layer.Name}.weight", layer.WeightShape!);
                expected.Add($"{layer.Name}.weight");
                if (layer.BiasShape is not null) { Bind(file, weightsPath, $"{layer.Name}.bias", layer.BiasShape); expected.Add($"{layer.Name}.bias"); }
            }
            var extra = file.Tensors.Keys.Where(k => !expected.Contains(k)).Order(StringComparer.Ordinal).ToArray();
            if (extra.Length > 0) throw new InvalidDataException($"{weightsPath}: tensors not used by {ArchitectureFileName}: {string.Join(", ", extra)}.");
            void Bind(SafetensorsFile f, string path, string name, int[] shape)
            {
                if (!f.Contains(name)) throw new InvalidDataException($"{path}: missing tensor '{name}' required by {ArchitectureFileName}.");
                var info = f.Info(name);
                if (!info.Shape.SequenceEqual(shape))
                    throw new InvalidDataException($"{path}: tensor '{name}' is {Tensor.ShapeString(info.Shape)}; {ArchitectureFileName} says {Tensor.ShapeString(shape)}.");
                weights[name] = f.Load(device, name);
            }
        }
        catch
        {
            foreach (var t in weights.Values) t.Dispose();
            throw;
        }
        return new ImageClassifier(device, architecture, weights, outShapes, featureLayer);
    }

    /// <summary>Per-sample output shape of every layer, checked against the declared <c>out</c> shapes.</summary>
    private static int[][] InferShapes(ClassifierArchitecture a)
    {
        var shapes = new int[a.Layers.Count][];
        int[] cur = a.InputShape;
        foreach (var layer in a.Layers)
        {
            string where = $"{a.Path}: layers[{layer.Index}] ({layer.Name ?? layer.Kind.ToString()})";
            switch (layer.Kind)
            {
                case ClassifierLayerKind.Conv2d:
                {
                    var w = layer.WeightShape!;
                    if (cur.Length != 3 || cur[0] != w[1]) throw new InvalidDataException($"{where}: weight [{string.Join(", ", w)}] expects {w[1]} input channels; input is [{string.Join(", ", cur)}].");
                    int ho = (cur[1] + 2 * layer.Padding - w[2]) / layer.Stride + 1, wo = (cur[2] + 2 * layer.Padding - w[3]) / layer.Stride + 1;
                    if (ho < 1 || wo < 1) throw new InvalidDataException($"{where}: output would be empty.");
                    cur = [w[0], ho, wo];
                    break;
                }
                case ClassifierLayerKind.MaxPool2d:
                    if (cur.Length != 3) throw new InvalidDataException($"{where}: needs a [C, H, W] input; got [{string.Join(", ", cur)}].");
                    // Pooling is composed from device ops that take whole, non-overlapping windows.
                    if (layer.Stride != layer.Kernel || cur[1] % layer.Kernel != 0 || cur[2] % layer.Kernel != 0)
                        throw new NotSupportedException($"{where}: only max pooling with stride = kernel over sizes divisible by the kernel is supported (kernel {layer.Kernel}, stride {layer.Stride}, input [{string.Join(", ", cur)}]).");
                    cur = [cur[0], cur[1] / layer.Kernel, cur[2] / layer.Kernel];
                    break;
                case ClassifierLayerKind.Flatten:
                    cur = [cur.Aggregate(1, (x, y) => x * y)];
                    break;
                case ClassifierLayerKind.Linear:
                    if (cur.Length != 1 || cur[0] != layer.WeightShape![1])
                        throw new InvalidDataException($"{where}: weight [{string.Join(", ", layer.WeightShape!)}] expects a flat input of {layer.WeightShape![1]}; input is [{string.Join(", ", cur)}].");
                    cur = [layer.WeightShape[0]];
                    break;
            }
            if (layer.Out is not null && !layer.Out.SequenceEqual(cur))
                throw new InvalidDataException($"{where}: declared out [{string.Join(", ", layer.Out)}] but the layer computes [{string.Join(", ", cur)}].");
            shapes[layer.Index] = cur;
        }
        return shapes;
    }

    /// <summary>The layer marked as features, else the input of the final (logits) layer.</summary>
    private static int FeatureLayer(ClassifierArchitecture a)
    {
        var marked = a.Layers.Where(l => l.IsFeatures).ToArray();
        if (marked.Length > 1) throw new InvalidDataException($"{a.Path}: {marked.Length} layers are marked as features; expected one.");
        if (marked.Length == 1) return marked[0].Index;
        if (a.Layers.Count < 2) throw new InvalidDataException($"{a.Path}: no layer before the logits to take features from.");
        return a.Layers.Count - 2;
    }

    /// <summary>
    /// Runs the network on a device tensor [N, C, H, W]; returns new device tensors logits [N, classes]
    /// and features [N, FeatureSize], which the caller disposes.
    /// </summary>
    public (Tensor Logits, Tensor Features) Forward(Tensor input)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var shape = Architecture.InputShape;
        if (input.Rank != 4 || input.Dim(1) != shape[0] || input.Dim(2) != shape[1] || input.Dim(3) != shape[2])
            throw new ArgumentException($"Classifier input {input} should be [N, {shape[0]}, {shape[1]}, {shape[2]}].", nameof(input));
        int n = input.Dim(0);
        var d = Device;
        Tensor cur = input;
        Tensor? owner = null; // the owned tensor behind cur (cur may be a view of it), null for the caller's input
        Tensor? features = null;
        try
        {
            foreach (var layer in Architecture.Layers)
            {
                int[] outShape = [n, .. _outShapes[layer.Index]];
                Tensor? next = null;
                switch (layer.Kind)
                {
                    case ClassifierLayerKind.Conv2d:
                        next = d.Allocate(outShape);
                        d.Conv2d(cur, _weights[$"{layer.Name}.weight"], Bias(layer), next, layer.Stride, layer.Padding);
                        break;
                    case ClassifierLayerKind.Relu:
                        if (owner is null) { next = d.Allocate(outShape); d.Activate(cur, next, Activation.Relu); }
                        else d.Activate(cur, cur, Activation.Relu);
                        break;
                    case ClassifierLayerKind.MaxPool2d:
                        next = d.Allocate(outShape);
                        DeviceMaxPool.Apply(d, cur, next, layer.Kernel);
                        break;
                    case ClassifierLayerKind.Flatten:
                        cur = cur.Reshape(outShape);
                        break;
                    case ClassifierLayerKind.Linear:
                        next = d.Allocate(outShape);
                        d.Linear(cur, _weights[$"{layer.Name}.weight"], Bias(layer), next);
                        break;
                    case ClassifierLayerKind.Dropout:
                        break;
                }
                if (next is not null) { owner?.Dispose(); owner = next; cur = next; }
                if (layer.Index == _featureLayer)
                {
                    features = d.Allocate(n, FeatureSize);
                    d.Copy(cur, features);
                }
            }
            // The last layer is linear (checked when parsing), so owner holds the logits.
            var logits = owner!;
            owner = null;
            return (logits, features!);
        }
        catch
        {
            owner?.Dispose();
            features?.Dispose();
            throw;
        }
    }

    private Tensor? Bias(ClassifierLayer layer) => layer.BiasShape is null ? null : _weights[$"{layer.Name}.bias"];

    /// <summary>
    /// Classifies host samples [N, C, H, W] (row-major floats in the classifier's input scaling),
    /// <paramref name="batchSize"/> images per forward pass; results come back to the host.
    /// </summary>
    public ClassifierOutput Classify(ReadOnlySpan<float> samples, int count, int batchSize = 256)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "Image count must be >= 0.");
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "Batch size must be >= 1.");
        var shape = Architecture.InputShape;
        int per = shape[0] * shape[1] * shape[2];
        if (samples.Length != (long)count * per)
            throw new ArgumentException($"{samples.Length} values for {count} images of [{shape[0]}, {shape[1]}, {shape[2]}] ({(long)count * per} expected).", nameof(samples));
        var logits = new float[count * ClassCount];
        var features = new float[count * FeatureSize];
        for (int start = 0; start < count; start += batchSize)
        {
            int b = Math.Min(batchSize, count - start);
            using var input = Device.Upload(samples.Slice(start * per, b * per), b, shape[0], shape[1], shape[2]);
            var (l, f) = Forward(input);
            using (l) using (f)
            {
                Device.Download(l, logits.AsSpan(start * ClassCount, b * ClassCount));
                Device.Download(f, features.AsSpan(start * FeatureSize, b * FeatureSize));
            }
        }
        return new ClassifierOutput(count, logits, features, ClassCount, FeatureSize);
    }

    /// <summary>Returns the weights to the device pool.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _weights.Values) t.Dispose();
        _weights.Clear();
    }
}
