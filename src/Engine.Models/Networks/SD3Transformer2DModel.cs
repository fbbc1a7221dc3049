using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>SD3Transformer2DModel</c> (Stable Diffusion 3 MM-DiT): patch embedding with the
/// centre-cropped sin-cos position table, conditioning from the timestep and the pooled text
/// embedding, <c>context_embedder</c> for the text tokens, joint transformer blocks (the last one
/// ends the context stream), then <c>norm_out</c> (adaptive layer norm), <c>proj_out</c> and unpatchify.
/// </summary>
public sealed class SD3Transformer2DModel : DiffusionModel
{
    private readonly CroppedPatchEmbed _posEmbed;
    private readonly CombinedTimestepTextProjEmbeddings _timeTextEmbed;
    private readonly Linear _contextEmbedder;
    private readonly JointTransformerBlock[] _blocks;
    private readonly AdaLayerNormContinuous _normOut;
    private readonly Linear _projOut;
    private readonly int _inChannels, _outChannels, _sampleSize, _patch, _inner, _jointDim, _pooledDim;

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public SD3Transformer2DModel(ModelConfig config) : base(config)
    {
        _sampleSize = config.Int("sample_size", 128);
        _patch = config.Int("patch_size", 2);
        _inChannels = config.Int("in_channels", 16);
        int layers = config.Int("num_layers", 18);
        int headDim = config.Int("attention_head_dim", 64);
        int heads = config.Int("num_attention_heads", 18);
        _jointDim = config.Int("joint_attention_dim", 4096);
        int captionDim = config.Int("caption_projection_dim", 1152);
        _pooledDim = config.Int("pooled_projection_dim", 2048);
        _outChannels = config.IntOrNull("out_channels", 16) ?? _inChannels;
        int maxSize = config.IntOrNull("pos_embed_max_size", 96)
            ?? throw config.Unsupported("pos_embed_max_size", "null", "an integer (the cropped position table of SD3)");
        var dual = config.IntList("dual_attention_layers", []);
        if (dual.Length > 0) throw config.Unsupported("dual_attention_layers", $"[{string.Join(", ", dual)}]", "[] (SD3.5 dual attention is not implemented)");
        var qkNorm = config.String("qk_norm", null);
        if (qkNorm is not null && !JointAttention.SupportedQkNorms.Contains(qkNorm))
            throw config.Unsupported("qk_norm", $"\"{qkNorm}\"", "null, " + string.Join(", ", JointAttention.SupportedQkNorms.Select(n => $"\"{n}\"")));
        foreach (var (key, value) in new[] { ("sample_size", _sampleSize), ("patch_size", _patch), ("in_channels", _inChannels), ("num_layers", layers),
                     ("attention_head_dim", headDim), ("num_attention_heads", heads), ("joint_attention_dim", _jointDim),
                     ("caption_projection_dim", captionDim), ("pooled_projection_dim", _pooledDim), ("out_channels", _outChannels), ("pos_embed_max_size", maxSize) })
            if (value < 1) throw config.Bad(key, value.ToString(), "a positive integer");
        _inner = heads * headDim;
        // The context embedder feeds the blocks directly, so its width must be the model width.
        if (captionDim != _inner) throw config.Bad("caption_projection_dim", captionDim.ToString(), $"num_attention_heads x attention_head_dim = {_inner}");
        if (_sampleSize % _patch != 0) throw config.Bad("sample_size", _sampleSize.ToString(), $"a multiple of patch_size {_patch}");

        _posEmbed = new CroppedPatchEmbed(Root.Sub("pos_embed"), _patch, _inChannels, _inner, maxSize);
        _timeTextEmbed = new CombinedTimestepTextProjEmbeddings(Root.Sub("time_text_embed"), _inner, _pooledDim);
        _contextEmbedder = new Linear(Root, "context_embedder", _jointDim, captionDim);
        _blocks = Enumerable.Range(0, layers)
            .Select(i => new JointTransformerBlock(Root.Sub("transformer_blocks", i), _inner, heads, headDim, contextPreOnly: i == layers - 1, qkNorm))
            .ToArray();
        _normOut = new AdaLayerNormContinuous(Root.Sub("norm_out"), _inner, _inner, 1e-6f);
        _projOut = new Linear(Root, "proj_out", _inner, _patch * _patch * _outChannels);
    }

    /// <inheritdoc />
    public override int InChannels => _inChannels;

    /// <inheritdoc />
    public override int OutChannels => _outChannels;

    /// <inheritdoc />
    public override int SizeMultiple => _patch;

    /// <inheritdoc />
    public override int SampleSize => _sampleSize;

    /// <summary>SD3 is not class-conditional.</summary>
    public override int? ClassCount => null;

    /// <inheritdoc />
    public override bool NeedsEncoderHiddenStates => true;

    /// <inheritdoc />
    public override bool NeedsPooledProjections => true;

    /// <summary>
    /// The joint attention of every block (<c>transformer_blocks.i.attn</c>): image and text tokens attend among
    /// themselves, so its identity map (each token its own value) is what perturbed-attention guidance perturbs.
    /// </summary>
    public override IReadOnlyList<ISelfAttention> SelfAttentionLayers => _blocks.Select(b => b.Attention).ToList();

    /// <summary>The middle block, as for DiT.</summary>
    public override IReadOnlyList<string> DefaultPerturbedLayerPrefixes => [$"transformer_blocks.{_blocks.Length / 2}"];

    /// <inheritdoc />
    public override Tensor Forward(DenoiserInputs inputs)
    {
        var x = inputs.Sample;
        int b = CheckImageInputs(inputs, _inChannels, _patch, classConditional: false, "hidden_states");
        var device = x.Device;
        var text = inputs.EncoderHiddenStates ?? throw new ArgumentException($"{Config.ClassName} from {Config.Path} needs encoder_hidden_states [B, L, {_jointDim}].");
        RequireDevice(text, "encoder_hidden_states");
        if (text.Rank != 3 || text.Dim(0) != b || text.Dim(2) != _jointDim || text.Dim(1) < 1)
            throw new ArgumentException($"encoder_hidden_states {text} should be [{b}, L, {_jointDim}].");
        var pooled = inputs.PooledProjections ?? throw new ArgumentException($"{Config.ClassName} from {Config.Path} needs pooled_projections [B, {_pooledDim}].");
        RequireDevice(pooled, "pooled_projections");
        if (pooled.Rank != 2 || pooled.Dim(0) != b || pooled.Dim(1) != _pooledDim)
            throw new ArgumentException($"pooled_projections {pooled} should be [{b}, {_pooledDim}].");
        var t = ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        var owned = new List<Tensor>();
        try
        {
            using var tokens = _posEmbed.Forward(ToActivations(x, owned)!);
            using var cond = _timeTextEmbed.Forward(t, pooled);
            // Every adaptive norm takes silu(conditioning): compute it once.
            device.Activate(cond, cond, Activation.SiLU);
            using var context = _contextEmbedder.Forward(ToActivations(text, owned)!);
            foreach (var block in _blocks) block.Forward(tokens, context, cond);
            using var normed = _normOut.ForwardActivated(tokens, cond);
            using var patches = _projOut.Forward(normed);
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
