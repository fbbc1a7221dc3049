using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>UNet2DConditionModel</c> in the Stable Diffusion 1.x/2.x form: CrossAttnDownBlock2D /
/// DownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D / CrossAttnUpBlock2D, spatial transformers with a
/// conv (SD 1.x) or linear (SD 2.x, <c>use_linear_projection</c>) projection. Beware the diffusers
/// naming: <c>attention_head_dim</c> is really the number of heads per block (SD 1.5's 8 means 8
/// heads of 40/80/160 channels).
/// </summary>
public sealed class UNet2DConditionModel : DiffusionModel
{
    private readonly UNetEncoder _encoder;
    private readonly UNetTrunk _trunk;
    private readonly int _inChannels, _outChannels, _sampleSize, _downFactor, _crossDim;

    /// <summary>The block types this implementation supports.</summary>
    public static readonly string[] DownBlockTypes = ConditionalUNetLayout.DownBlockTypes, UpBlockTypes = ["CrossAttnUpBlock2D", "UpBlock2D"];

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public UNet2DConditionModel(ModelConfig config) : base(config)
    {
        config.RequireOneOf("time_embedding_type", "\"positional\"", "\"positional\"");
        config.RequireOneOf("dual_cross_attention", "false", "false");
        config.RequireOneOf("attention_type", "\"default\"", "\"default\"");
        var layout = new ConditionalUNetLayout(config);
        _inChannels = layout.InChannels;
        _outChannels = config.Int("out_channels", 4);
        _sampleSize = config.IntOrNull("sample_size", null) ?? 0;
        var channels = layout.Channels;
        int n = channels.Length;
        var upTypes = config.StringList("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]);
        if (upTypes.Length != n) throw config.Bad("up_block_types", $"{upTypes.Length} up blocks", $"one per block_out_channels entry ({n})");
        int convOutKernel = config.Int("conv_out_kernel", 3);
        if (convOutKernel % 2 != 1) throw config.Bad("conv_out_kernel", convOutKernel.ToString(), "an odd kernel size");
        _crossDim = layout.CrossDims[0];

        // The encoder half (conv_in, embeddings, down and mid blocks) is the one a ControlNet copies.
        _encoder = layout.BuildEncoder(Root);

        var rChannels = channels.Reverse().ToArray();
        var rHeads = layout.Heads.Reverse().ToArray();
        var rLayers = layout.Layers.Reverse().ToArray();
        var rCross = layout.CrossDims.Reverse().ToArray();
        var rTransformer = layout.TransformerLayers.Reverse().ToArray();
        var rOnlyCross = layout.OnlyCross.Reverse().ToArray();
        var up = new UNetUpBlock[n];
        int output = rChannels[0];
        for (int i = 0; i < n; i++)
        {
            int prev = output;
            output = rChannels[i];
            int input = rChannels[Math.Min(i + 1, n - 1)];
            var scope = Root.Sub("up_blocks", i);
            if (!UpBlockTypes.Contains(upTypes[i])) throw config.Unsupported("up_block_types", $"\"{upTypes[i]}\"", string.Join(", ", UpBlockTypes));
            int count = rLayers[i] + 1;
            var resnets = Enumerable.Range(0, count).Select(j =>
                layout.Resnet(scope.Sub("resnets", j), (j == 0 ? prev : output) + (j == count - 1 ? input : output), output)).ToArray();
            ISpatialMixer[]? mixers = upTypes[i] == "CrossAttnUpBlock2D"
                ? Enumerable.Range(0, count).Select(j => (ISpatialMixer)layout.Transformer(scope.Sub("attentions", j), output, rHeads[i], rTransformer[i], rCross[i], rOnlyCross[i])).ToArray()
                : null;
            up[i] = new UNetUpBlock(resnets, mixers, i == n - 1 ? null : new Upsample2D(scope.Sub("upsamplers", 0), output, output));
        }
        var normOut = new GroupNorm(Root, "conv_norm_out", layout.Groups, channels[0], layout.Eps);
        var convOut = new Conv2d(Root, "conv_out", channels[0], _outChannels, convOutKernel, 1, (convOutKernel - 1) / 2);
        _downFactor = layout.DownFactor;
        var midMixers = _encoder.Mid?.Mixers ?? [];
        SelfAttentionLayers = _encoder.Down.SelectMany(b => b.Mixers).Concat(midMixers).Concat(up.SelectMany(b => b.Mixers)).SelectMany(m => m.SelfAttentions).ToList();
        _trunk = new UNetTrunk(_encoder, up, normOut, convOut);
        SkipChannels = layout.SkipChannels;
        BlockChannels = channels;
    }

    /// <summary>Number of skips the down path keeps (the number of ControlNet down residuals it takes).</summary>
    public int SkipCount => SkipChannels.Count;

    /// <summary>Channels of each skip, in order: the channels of the ControlNet down residuals it takes.</summary>
    public IReadOnlyList<int> SkipChannels { get; }

    /// <summary>block_out_channels of the configuration.</summary>
    public IReadOnlyList<int> BlockChannels { get; }

    /// <inheritdoc />
    public override int InChannels => _inChannels;

    /// <inheritdoc />
    public override int OutChannels => _outChannels;

    /// <inheritdoc />
    public override int SizeMultiple => _downFactor;

    /// <inheritdoc />
    public override int SampleSize => _sampleSize;

    /// <inheritdoc />
    public override int? ClassCount => _encoder.ClassEmbedding?.Rows;

    /// <inheritdoc />
    public override bool NeedsEncoderHiddenStates => true;

    /// <summary>
    /// Whether the UNet takes SDXL's added conditioning (<c>addition_embed_type: "text_time"</c>), passed as
    /// <see cref="DenoiserInputs.PooledProjections"/> [B, text_embeds width + 6]: the pooled text embedding,
    /// then the six add_time_ids.
    /// </summary>
    public override bool NeedsPooledProjections => _encoder.Addition is not null;

    /// <summary>SDXL's added conditioning, or null.</summary>
    public UNetAdditionEmbedding? AdditionEmbedding => _encoder.Addition;

    /// <summary>Width of the encoder hidden states (cross_attention_dim).</summary>
    public int CrossAttentionDim => _crossDim;

    /// <inheritdoc />
    public override IReadOnlyList<ISelfAttention> SelfAttentionLayers { get; }

    /// <inheritdoc />
    public override IReadOnlyList<string> DefaultPerturbedLayerPrefixes => ["mid_block"];

    /// <inheritdoc />
    public override Tensor Forward(DenoiserInputs inputs)
    {
        var sample = inputs.Sample;
        int b = CheckImageInputs(inputs, _inChannels, _downFactor, _encoder.ClassEmbedding is not null);
        var context = inputs.EncoderHiddenStates ?? throw new ArgumentException($"{Config.ClassName} from {Config.Path} needs encoder_hidden_states.");
        RequireDevice(context, "encoder_hidden_states");
        if (context.Rank != 3 || context.Dim(0) != b || context.Dim(2) != _crossDim)
            throw new ArgumentException($"encoder_hidden_states {context} should be [{b}, L, {_crossDim}].");

        var t = ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        var addEmbedding = _encoder.Addition;
        if (addEmbedding is not null && inputs.PooledProjections is null)
            throw new ArgumentException($"{Config.ClassName} from {Config.Path} (addition_embed_type text_time) needs text_embeds and time_ids (pooled projections).");
        if (inputs.PooledProjections is { } added) RequireDevice(added, "added_cond_kwargs");
        try { return _trunk.Forward(sample, t, inputs.ClassLabels, context, addEmbedding is null ? null : inputs.PooledProjections, inputs.Residuals, Activations); }
        finally { if (ownsT) t.Dispose(); }
    }
}
