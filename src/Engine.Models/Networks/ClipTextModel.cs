using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// transformers' <c>CLIPTextModel</c> and <c>CLIPTextModelWithProjection</c>, the text encoders of
/// Stable Diffusion pipelines, from a transformers folder (<c>config.json</c> + <c>model.safetensors</c>):
/// token and position embeddings, pre-LN transformer layers with causal self-attention, the final
/// layer norm, the pooled end-of-text row and (with projection) <c>text_projection</c>. No attention
/// mask besides the causal one, as diffusers calls it: padding positions are attended.
/// </summary>
public sealed class ClipTextModel : Network
{
    /// <summary>transformers writes weights to this file (or a sharded <c>.index.json</c> of it).</summary>
    public const string WeightsFileName = "model.safetensors";

    /// <summary>The <c>architectures</c> entries this class loads.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures = ["CLIPTextModel", "CLIPTextModelWithProjection"];

    // Older transformers saved the position-id buffer; it is arange(max_positions) and not a weight.
    private const string LegacyPositionIds = "text_model.embeddings.position_ids";

    private readonly Parameter _tokenEmbedding, _positionEmbedding;
    private readonly ClipEncoderLayer[] _layers;
    private readonly LayerNorm _finalNorm;
    private readonly Linear? _projection;

    /// <summary>Builds the network from a transformers <c>config.json</c> (no weights).</summary>
    public ClipTextModel(ModelConfig config) : base(config)
    {
        var architectures = config.StringList("architectures", []);
        Architecture = architectures.FirstOrDefault(SupportedArchitectures.Contains)
            ?? throw new ModelLoadException($"{config.Path}: architectures [{string.Join(", ", architectures)}] name no supported text encoder; supported: {string.Join(", ", SupportedArchitectures)}.", ModelLoadFailure.UnsupportedClass);
        VocabSize = config.Int("vocab_size", 49408);
        HiddenSize = config.Int("hidden_size", 512);
        MaxPositions = config.Int("max_position_embeddings", 77);
        EosTokenId = config.Int("eos_token_id", 49407);
        int heads = config.Int("num_attention_heads", 8), layers = config.Int("num_hidden_layers", 12);
        int intermediate = config.Int("intermediate_size", 2048);
        var activation = config.String("hidden_act", "quick_gelu") ?? "quick_gelu";
        if (!ClipEncoderLayer.SupportedActivations.Contains(activation))
            throw config.Unsupported("hidden_act", $"\"{activation}\"", string.Join(", ", ClipEncoderLayer.SupportedActivations));
        if (heads < 1 || HiddenSize % heads != 0) throw config.Bad("num_attention_heads", heads.ToString(), $"a divisor of hidden_size {HiddenSize}");
        float eps = (float)config.Number("layer_norm_eps", 1e-5);

        var text = Root.Sub("text_model");
        var embeddings = text.Sub("embeddings");
        _tokenEmbedding = embeddings.Add("token_embedding.weight", [VocabSize, HiddenSize]);
        // The lookup copies rows, converting to float32, so the largest table may be stored in half precision.
        _tokenEmbedding.AllowsHalfStorage = true;
        _positionEmbedding = embeddings.Add("position_embedding.weight", [MaxPositions, HiddenSize]);
        _layers = Enumerable.Range(0, layers)
            .Select(i => new ClipEncoderLayer(text.Sub("encoder.layers", i), HiddenSize, heads, intermediate, activation, eps)).ToArray();
        _finalNorm = new LayerNorm(text, "final_layer_norm", HiddenSize, eps);
        if (Architecture == "CLIPTextModelWithProjection")
        {
            ProjectionDim = config.Int("projection_dim", 512);
            _projection = new Linear(Root, "text_projection", HiddenSize, ProjectionDim.Value, bias: false);
        }
    }

    /// <summary>Loads a text encoder folder onto <paramref name="device"/> (Linear weights in <paramref name="weightStorage"/>).</summary>
    public static ClipTextModel Load(Device device, string folder, DType weightStorage = DType.F32)
    {
        if (!Directory.Exists(folder)) throw new ModelLoadException($"{folder}: text encoder folder not found.", ModelLoadFailure.NotFound);
        var model = new ClipTextModel(ModelConfig.Load(Path.Combine(folder, ModelConfig.FileName)));
        try
        {
            using var file = SafetensorsWeightSource.OpenFolder(folder, WeightsFileName);
            model.Bind(device, new FilteredWeightSource(file, [LegacyPositionIds]), weightStorage);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>"CLIPTextModel" or "CLIPTextModelWithProjection".</summary>
    public string Architecture { get; }

    /// <summary>Number of token ids.</summary>
    public int VocabSize { get; }

    /// <summary>Width of the hidden states.</summary>
    public int HiddenSize { get; }

    /// <summary>Longest input (77).</summary>
    public int MaxPositions { get; }

    /// <summary>Number of transformer layers (<see cref="ClipTextOutput.HiddenStates"/> has one more entry).</summary>
    public int LayerCount => _layers.Length;

    /// <summary>The config's <c>eos_token_id</c>, which picks the pooling rule (see <see cref="PooledPosition"/>).</summary>
    public int EosTokenId { get; }

    /// <summary>Width of <see cref="ClipTextOutput.TextEmbeds"/>, or null without projection.</summary>
    public int? ProjectionDim { get; }

    /// <summary>
    /// The position pooled for one row of ids, by transformers' two rules: configs with the legacy
    /// <c>eos_token_id</c> 2 (every real SD 1.x/2.x/XL one) take the first position of the largest id;
    /// others the first position holding <c>eos_token_id</c>, or 0 when there is none. On tokenizer
    /// output both give the first end-of-text token.
    /// </summary>
    public int PooledPosition(ReadOnlySpan<int> rowIds)
    {
        if (EosTokenId == 2)
        {
            int best = 0;
            for (int i = 1; i < rowIds.Length; i++) if (rowIds[i] > rowIds[best]) best = i;
            return best;
        }
        int eos = rowIds.IndexOf(EosTokenId);
        return eos < 0 ? 0 : eos;
    }

    /// <summary>
    /// Runs the encoder on <paramref name="inputIds"/>: <paramref name="batch"/> rows of equal length
    /// (at most <see cref="MaxPositions"/>), row-major, every id below <see cref="VocabSize"/>.
    /// </summary>
    public ClipTextOutput Forward(ReadOnlySpan<int> inputIds, int batch)
    {
        var device = Device ?? throw new InvalidOperationException($"{Architecture} from {Config.Path} has no weights loaded.");
        if (batch < 1 || inputIds.Length % batch != 0 || inputIds.Length == 0)
            throw new ArgumentException($"{inputIds.Length} ids do not split into {batch} rows of equal length.");
        int l = inputIds.Length / batch;
        if (l > MaxPositions) throw new ArgumentException($"Rows of {l} ids are longer than the model's {MaxPositions} positions.");
        for (int i = 0; i < inputIds.Length; i++)
            if ((uint)inputIds[i] >= (uint)VocabSize)
                throw new ArgumentException($"Token id {inputIds[i]} (row {i / l}, position {i % l}) is outside the vocabulary of {VocabSize}.");

        var hidden = new List<Tensor>(_layers.Length + 1);
        Tensor? last = null, pooled = null, embeds = null;
        try
        {
            var h = device.Allocate(Activations, batch, l, HiddenSize);
            hidden.Add(h);
            // The embedding lookup copies table rows on the device; the ids are host data from the tokenizer.
            var rows = h.Reshape(batch * l, HiddenSize);
            for (int i = 0; i < inputIds.Length; i++) device.Copy(_tokenEmbedding.Tensor.Slice(inputIds[i], 1), rows.Slice(i, 1));
            device.Add(h, _positionEmbedding.Tensor.Slice(0, l), h);

            foreach (var layer in _layers) hidden.Add(layer.Forward(hidden[^1]));
            last = ToFloat32(FinalLayerNorm(hidden[^1]));
            // Callers get float32 hidden states whatever the layers ran in.
            for (int i = 0; i < hidden.Count; i++) hidden[i] = ToFloat32(hidden[i]);

            var pooledIndex = new int[batch];
            pooled = device.Allocate(batch, HiddenSize);
            var lastRows = last.Reshape(batch * l, HiddenSize);
            for (int r = 0; r < batch; r++)
            {
                pooledIndex[r] = PooledPosition(inputIds.Slice(r * l, l));
                device.Copy(lastRows.Slice(r * l + pooledIndex[r], 1), pooled.Slice(r, 1));
            }
            embeds = _projection?.Forward(pooled);
            return new ClipTextOutput([.. hidden], last, pooled, embeds, pooledIndex);
        }
        catch
        {
            foreach (var t in hidden) t.Dispose();
            last?.Dispose();
            pooled?.Dispose();
            embeds?.Dispose();
            throw;
        }
    }

    /// <summary>The final layer norm applied to a hidden state [B, L, D] (clip skip in SD); returns a new tensor.</summary>
    public Tensor FinalLayerNorm(Tensor hiddenState) => _finalNorm.Forward(hiddenState);
}
