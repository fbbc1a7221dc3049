using Engine.Core;
using Engine.Models.Modules;
using Engine.Models.Networks;
using Engine.Sampling.Guidance;

namespace Engine.Generation;

/// <summary>
/// Adapts a class-conditional, text-conditional (encoder hidden states) or unconditional diffusers network to the guidance layer's
/// <see cref="IConditionalModel"/>: per-row class labels or text embeddings, identity self-attention on the perturbed
/// rows (PAG) through the layers' row switch, the class-embedding transform (CADS) through the label
/// tables' hook, and the prediction half of learned-sigma outputs. Switches are set for one forward
/// and cleared afterwards, so the network is never copied and stays usable elsewhere.
/// </summary>
internal sealed class ConditionalNetwork : IConditionalModel, IDisposable
{
    private readonly DiffusionModel _network;
    private readonly bool _conditional;
    private Tensor? _output;
    private Tensor? _raw;
    private IReadOnlyList<string>? _perturbedNames;
    private IReadOnlyList<ISelfAttention> _perturbedLayers = [];
    private IReadOnlyList<LabelEmbedding>? _labelTables;

    public ConditionalNetwork(DiffusionModel network, string predictionType)
    {
        _network = network;
        PredictionType = predictionType;
        _conditional = network.ClassCount is > 1;
    }

    public string PredictionType { get; }

    /// <summary>The ControlNets whose residuals this batch's UNet adds, or null.</summary>
    public ControlNetBatch? Control { get; set; }

    public Tensor Forward(Tensor sample, Tensor timesteps, ConditioningBatch conditioning)
    {
        var device = sample.Device;
        IReadOnlyList<ISelfAttention> perturbed = conditioning.PerturbedCount > 0 ? PerturbedLayers(conditioning.PerturbedLayers) : [];
        IReadOnlyList<LabelEmbedding> tables = conditioning.ClassEmbeddingTransform is null ? [] : _labelTables ??= _network.LabelEmbeddings;
        try
        {
            foreach (var layer in perturbed) layer.IdentityRows = (conditioning.PerturbedStart, conditioning.PerturbedCount);
            foreach (var table in tables) table.Transform = conditioning.ClassEmbeddingTransform!.Apply;
            _raw?.Dispose();
            using var residuals = Control?.Residuals(sample, timesteps, conditioning);
            _raw = _network.Forward(new DenoiserInputs(sample, timesteps)
            {
                ClassLabels = _conditional ? conditioning.ClassLabels : null,
                EncoderHiddenStates = _network.NeedsEncoderHiddenStates ? conditioning.Embeddings : null,
                PooledProjections = _network.NeedsPooledProjections ? conditioning.Pooled : null,
                Residuals = residuals,
            });
        }
        finally
        {
            foreach (var layer in perturbed) layer.IdentityRows = null;
            foreach (var table in tables) table.Transform = null;
        }
        if (_raw.Dim(1) == sample.Dim(1)) return _raw;
        // Learned-sigma networks return [prediction; variance] channels: keep the prediction.
        if (_output is null || _output.Length != sample.Length)
        {
            _output?.Dispose();
            _output = device.Allocate(sample.ShapeArray());
        }
        device.SliceChannels(_raw, 0, _output);
        return _output;
    }

    /// <summary>The layers named by the guidance options, resolved once per list (the options do not change during a run).</summary>
    private IReadOnlyList<ISelfAttention> PerturbedLayers(IReadOnlyList<string> names)
    {
        if (ReferenceEquals(names, _perturbedNames)) return _perturbedLayers;
        // "mid_block" is the guidance layer's default; networks without one (DiT) use their own default.
        _perturbedLayers = names.Count == 0 || (names.Count == 1 && names[0] == "mid_block" && !_network.SelfAttentionLayers.Any(a => a.Name.StartsWith("mid_block.", StringComparison.Ordinal)))
            ? _network.FindSelfAttention()
            : _network.FindSelfAttention(names);
        _perturbedNames = names;
        return _perturbedLayers;
    }

    public void Dispose()
    {
        _raw?.Dispose();
        _output?.Dispose();
    }
}
