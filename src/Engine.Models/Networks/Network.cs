using Engine.Core;
using Engine.Models.Binding;

namespace Engine.Models.Networks;

/// <summary>
/// A network built from a diffusers configuration: its declared parameters (bound to device tensors
/// once loaded) and device-side caches. Building declares parameters only, so a network can be
/// checked against a key/shape list without weights.
/// </summary>
public abstract class Network : IDisposable
{
    /// <summary>The root scope the network declares its parameters in.</summary>
    protected ParameterScope Root { get; }

    /// <summary>
    /// Creates the network for <paramref name="config"/>; building stops with a <see cref="ParameterLimitException"/>
    /// past <see cref="ModelConfig.ParameterLimit"/> parameters.
    /// </summary>
    protected Network(ModelConfig config)
    {
        Config = config;
        Root = new ParameterScope(config.ParameterLimit);
    }

    /// <summary>The configuration the network was built from.</summary>
    public ModelConfig Config { get; }

    /// <summary>Every parameter, in declaration order.</summary>
    public IReadOnlyList<Parameter> Parameters => Root.All;

    /// <summary>The device holding the weights, or null before <see cref="Bind"/>.</summary>
    public Device? Device { get; private set; }

    /// <summary>Bytes the bound parameters occupy on the device (0 before <see cref="Bind"/>).</summary>
    public long ParameterBytes => Parameters.Sum(p => p.Value is null ? 0L : p.Value.Length * p.Value.DType.Size());

    /// <summary>Total number of parameter elements.</summary>
    public long ParameterCount => Parameters.Sum(p => Tensor.ShapeLength(p.Shape));

    /// <summary>
    /// Strictly binds every parameter from <paramref name="source"/> onto <paramref name="device"/>,
    /// Linear and Conv2d weights in <paramref name="weightStorage"/> (see <see cref="WeightBinder.Bind"/>).
    /// </summary>
    public void Bind(Device device, IWeightSource source, DType weightStorage = DType.F32)
    {
        WeightBinder.Bind(device, Parameters, source, weightStorage);
        Device = device;
    }

    private DType _activations = DType.F32;

    /// <summary>
    /// Storage of the activations inside the network: F32 (default), or F16 / BF16 on a device that
    /// <see cref="Engine.Core.Device.SupportsHalfActivations">supports half activations</see>. Products and
    /// reductions accumulate in float32 either way; inputs and outputs stay float32 (the network converts
    /// at its boundaries), and so do the timestep and class embeddings.
    /// </summary>
    public DType Activations
    {
        get => _activations;
        set
        {
            if (value != DType.F32 && Device is { SupportsHalfActivations: false } device)
                throw new ArgumentException($"{Config.ClassName}: {value.StorageName()} activations need a device with half-precision activations; {device.Name} computes in f32.");
            _activations = value;
        }
    }

    /// <summary>
    /// <paramref name="t"/> stored as <see cref="Activations"/>: the tensor itself, or a converted copy that is
    /// added to <paramref name="owned"/> for the caller to dispose. Null stays null.
    /// </summary>
    protected Tensor? ToActivations(Tensor? t, List<Tensor> owned)
    {
        if (t is null || t.DType == _activations) return t;
        var converted = t.Device.Convert(t, _activations);
        owned.Add(converted);
        return converted;
    }

    /// <summary>Returns <paramref name="t"/> as float32, disposing it when a converted copy replaces it.</summary>
    protected static Tensor ToFloat32(Tensor t)
    {
        if (t.DType == DType.F32) return t;
        using (t) return t.Device.Convert(t, DType.F32);
    }

    /// <summary>Checks that <paramref name="source"/> binds every parameter with the right shape, loading nothing.</summary>
    public void CheckBinding(IWeightSource source) => WeightBinder.Plan(Parameters, source);

    /// <summary>Throws unless the network is loaded and <paramref name="t"/> lives on its device.</summary>
    protected Device RequireDevice(Tensor t, string name)
    {
        var device = Device ?? throw new InvalidOperationException($"{Config.ClassName} from {Config.Path} has no weights loaded.");
        if (!ReferenceEquals(t.Device, device)) throw new ArgumentException($"Input '{name}' lives on {t.Device.Name}, but the model's weights are on {device.Name}.");
        if (t.DType != DType.F32) throw new ArgumentException($"Input '{name}' {t} must be F32.");
        return device;
    }

    /// <summary>Frees the weights and caches.</summary>
    public void Dispose()
    {
        WeightBinder.Release(Parameters);
        foreach (var c in Root.Caches) c.Dispose();
        Device = null;
        GC.SuppressFinalize(this);
    }
}
