using Microsoft.ML.OnnxRuntime;

namespace Engine.Bench.Peers;

/// <summary>
/// One ONNX Runtime CPU session with its inputs bound once, so a benchmark invocation is one
/// <see cref="Run"/>: the way C# users of ORT run a model. IntraOpNumThreads is the core count, the
/// graph is fully optimised, execution is sequential.
/// </summary>
public sealed class OrtPeer : IDisposable
{
    private readonly InferenceSession _session;
    private readonly RunOptions _runOptions = new();
    private readonly List<OrtValue> _values = [];
    private readonly string[] _inputNames, _outputNames;

    private OrtPeer(InferenceSession session, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs)
    {
        _session = session;
        _inputNames = [.. inputs.Keys];
        foreach (var name in _inputNames)
        {
            var (data, shape) = inputs[name];
            _values.Add(data switch
            {
                float[] f => OrtValue.CreateTensorValueFromMemory(f, shape),
                long[] l => OrtValue.CreateTensorValueFromMemory(l, shape),
                _ => throw new ArgumentException($"Peer input '{name}': unsupported element type {data.GetType().Name}."),
            });
        }
        _outputNames = [.. session.OutputMetadata.Keys];
    }

    /// <summary>Opens an ONNX file with the given inputs (float[] or long[] with their shapes).</summary>
    public static OrtPeer FromFile(string path, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs) =>
        new(new InferenceSession(path, Options()), inputs);

    /// <summary>Opens an in-memory model (see <see cref="OnnxGraph"/>).</summary>
    public static OrtPeer FromBytes(byte[] model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs) =>
        new(new InferenceSession(model, Options()), inputs);

    /// <summary>
    /// An in-memory model on <paramref name="threads"/> intra-op threads that do not spin after a run, so
    /// the process's CPU time counts ORT's work and not its idle polling (timings by CPU time).
    /// </summary>
    public static OrtPeer FromBytes(byte[] model, IReadOnlyDictionary<string, (Array Data, long[] Shape)> inputs, int threads)
    {
        var options = Options(threads);
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return new(new InferenceSession(model, options), inputs);
    }

    private static SessionOptions Options(int threads = 0) => new()
    {
        IntraOpNumThreads = threads > 0 ? threads : Environment.ProcessorCount,
        InterOpNumThreads = 1,
        ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
    };

    /// <summary>Runs the graph once; outputs are allocated by ORT and released at once.</summary>
    public void Run()
    {
        using var outputs = _session.Run(_runOptions, _inputNames, _values, _outputNames);
    }

    /// <summary>Runs the graph once and returns the first output's values (for sanity checks).</summary>
    public float[] RunFirstOutput()
    {
        using var outputs = _session.Run(_runOptions, _inputNames, _values, _outputNames);
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    public void Dispose()
    {
        foreach (var v in _values) v.Dispose();
        _runOptions.Dispose();
        _session.Dispose();
    }
}
