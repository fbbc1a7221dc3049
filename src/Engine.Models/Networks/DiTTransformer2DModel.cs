using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>DiTTransformer2DModel</c> (also the hub's <c>Transformer2DModel</c> form of DiT):
/// patch embedding with 2-D sin-cos positions, adaLN-Zero transformer blocks conditioned on the
/// timestep and class label, and the final adaptive layer norm + linear + unpatchify. With learned
/// sigma the output has twice the sample's channels; all channels are returned, as diffusers does.
/// </summary>
public sealed class DiTTransformer2DModel : DiffusionModel
{
    private readonly PatchEmbed _posEmbed;
    private readonly BasicTransformerBlock[] _blocks;
    private readonly Linear _projOut1, _projOut2;
    private readonly int _inChannels, _outChannels, _sampleSize, _patch, _inner, _classes;

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public DiTTransformer2DModel(ModelConfig config) : base(config)
    {
        bool hubForm = config.ClassName == "Transformer2DModel";
        var normType = config.String("norm_type", hubForm ? "layer_norm" : "ada_norm_zero");
        if (normType != "ada_norm_zero") throw config.Unsupported("norm_type", $"\"{normType}\"", "\"ada_norm_zero\" (DiT)");
        if (hubForm && !config.Has("patch_size")) throw config.Unsupported("patch_size", "null", "an integer (the patched DiT form of Transformer2DModel)");
        int heads = config.Int("num_attention_heads", 16), headDim = config.Int("attention_head_dim", hubForm ? 88 : 72);
        _inner = heads * headDim;
        _inChannels = config.IntOrNull("in_channels", hubForm ? null : 4) ?? throw config.Unsupported("in_channels", "null", "an integer");
        _outChannels = config.IntOrNull("out_channels", null) ?? _inChannels;
        int layers = config.Int("num_layers", hubForm ? 1 : 28);
        _sampleSize = config.IntOrNull("sample_size", 32) ?? throw config.Unsupported("sample_size", "null", "an integer");
        _patch = config.Int("patch_size", 2);
        var activation = config.String("activation_fn", hubForm ? "geglu" : "gelu-approximate") ?? "gelu-approximate";
        if (!FeedForward.SupportedActivations.Contains(activation)) throw config.Unsupported("activation_fn", $"\"{activation}\"", string.Join(", ", FeedForward.SupportedActivations));
        _classes = config.IntOrNull("num_embeds_ada_norm", hubForm ? null : 1000) ?? throw config.Unsupported("num_embeds_ada_norm", "null", "an integer (number of classes)");
        bool attentionBias = config.Bool("attention_bias", !hubForm);
        bool affine = config.Bool("norm_elementwise_affine", hubForm);
        float eps = (float)config.Number("norm_eps", 1e-5);
        if (_sampleSize % _patch != 0) throw config.Bad("sample_size", _sampleSize.ToString(), $"a multiple of patch_size {_patch}");

        _posEmbed = new PatchEmbed(Root.Sub("pos_embed"), _sampleSize, _sampleSize, _patch, _inChannels, _inner);
        _blocks = Enumerable.Range(0, layers).Select(i => new BasicTransformerBlock(Root.Sub("transformer_blocks", i), _inner, heads, headDim,
            activation: activation, numEmbedsAdaNorm: _classes, attentionBias: attentionBias, normType: "ada_norm_zero",
            normElementwiseAffine: affine, normEps: eps)).ToArray();
        _projOut1 = new Linear(Root, "proj_out_1", _inner, 2 * _inner);
        _projOut2 = new Linear(Root, "proj_out_2", _inner, _patch * _patch * _outChannels);
        SelfAttentionLayers = _blocks.Select(b => b.Attn1).ToList();
    }

    /// <inheritdoc />
    public override int InChannels => _inChannels;

    /// <inheritdoc />
    public override int OutChannels => _outChannels;

    /// <inheritdoc />
    public override int SizeMultiple => _patch;

    /// <inheritdoc />
    public override int SampleSize => _sampleSize;

    /// <summary>Label rows: the classes plus the null (unconditional) class, which is label <c>num_embeds_ada_norm</c>.</summary>
    public override int? ClassCount => _classes + 1;

    /// <inheritdoc />
    public override IReadOnlyList<ISelfAttention> SelfAttentionLayers { get; }

    /// <summary>The middle transformer block (DiT has no mid block).</summary>
    public override IReadOnlyList<string> DefaultPerturbedLayerPrefixes => [$"transformer_blocks.{_blocks.Length / 2}"];

    /// <inheritdoc />
    public override Tensor Forward(DenoiserInputs inputs)
    {
        var x = inputs.Sample;
        int b = CheckImageInputs(inputs, _inChannels, _patch, classConditional: true, "hidden_states");
        var device = x.Device;
        var labels = inputs.ClassLabels!;
        var t = ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        var owned = new List<Tensor>();
        try
        {
            using var tokens = _posEmbed.Forward(ToActivations(x, owned)!);
            foreach (var block in _blocks) block.Forward(tokens, null, t, labels);
            using var cond = _blocks[0].AdaNorm!.Embedding!.Forward(t, labels);
            device.Activate(cond, cond, Activation.SiLU);
            using var shift = _projOut1.ForwardChunk(cond, 0, _inner);
            using var scale = _projOut1.ForwardChunk(cond, _inner, _inner);
            using var normed = device.Allocate(tokens.DType, tokens.ShapeArray());
            device.LayerNorm(tokens, null, null, normed, 1e-6f);
            device.Modulate(normed, shift, scale, normed);
            using var patches = _projOut2.Forward(normed);
            var y = device.Allocate(b, _outChannels, x.Dim(2), x.Dim(3));
            device.Unpatchify(patches, y, _patch);
            return y;
        }
        finally
        {
            if (ownsT) t.Dispose();
            foreach (var o in owned) o.Dispose();
        }
    }
}
