using BenchmarkDotNet.Attributes;
using Engine.Bench.Peers;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Bench.Infrastructure;

/// <summary>
/// A CPU suite that measures <see cref="CpuDevice"/> and its ONNX Runtime peer in the same class: the
/// <see cref="Provider"/> parameter picks one, so both run the same shapes side by side and the
/// summary prints their ratio (<see cref="PeerRatios"/>). Suites whose peer is a shared ONNX file
/// offer the <c>ort</c> provider only when that folder exists.
/// </summary>
public abstract class PeerBenchmark : DeviceBenchmark
{
    /// <summary>The engine's managed SIMD device.</summary>
    public const string EngineProvider = "engine-cpu";

    /// <summary>ONNX Runtime's CPU execution provider.</summary>
    public const string OrtProvider = "ort";

    [ParamsSource(nameof(Providers))]
    public string Provider { get; set; } = EngineProvider;

    /// <summary>The providers this suite runs: the engine always, ORT when its peer can be built.</summary>
    public IEnumerable<string> Providers() => PeerAvailable() ? [EngineProvider, OrtProvider] : [EngineProvider];

    /// <summary>The ORT session of an <c>ort</c> case, else null.</summary>
    protected OrtPeer? Peer { get; private set; }

    /// <summary>True when the peer needs no shared file, or the shared peers folder exists.</summary>
    protected virtual bool PeerAvailable() => SharedPeerFile is null || PeerFiles.Find(SharedPeerFile) is not null;

    /// <summary>The shared ONNX file this suite's peer reads, or null when the peer is built in memory.</summary>
    protected virtual string? SharedPeerFile => null;

    protected override Device CreateDevice() => new CpuDevice();

    protected sealed override void Setup()
    {
        if (Provider == OrtProvider) Peer = CreatePeer();
        else SetupEngine();
    }

    /// <summary>Allocates the engine's tensors (engine cases only).</summary>
    protected abstract void SetupEngine();

    /// <summary>Builds the ORT session for the same shapes (ort cases only).</summary>
    protected abstract OrtPeer CreatePeer();

    /// <summary>Path of the shared peer file (the folder exists when an ort case runs).</summary>
    protected static string SharedFile(string file) =>
        PeerFiles.Find(file) ?? throw new FileNotFoundException($"ONNX peer file '{file}' not found (peers folder: {PeerFiles.Root ?? "absent"}).");

    /// <summary>Float input of a peer.</summary>
    protected static (Array, long[]) PeerInput(float[] data, params int[] shape) => (data, shape.Select(d => (long)d).ToArray());

    protected override void Cleanup()
    {
        Peer?.Dispose();
        Peer = null;
    }
}
