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
    private readonly Timesteps _timeProj;
    private readonly TimestepEmbedding _timeEmbedding;
    private readonly UNetClassEmbedding? _classEmbedding;
    private readonly UNetAdditionEmbedding? _addEmbedding;
    private readonly Conv2d _convIn, _convOut;
    private readonly UNetDownBlock[] _down;
    private readonly UNetMidBlock? _mid;
    private readonly UNetUpBlock[] _up;
    private readonly GroupNorm _normOut;
    private readonly UNetTrunk _trunk;
    private readonly bool _centerInput;
    private readonly int _inChannels, _outChannels, _sampleSize, _downFactor, _crossDim;

    /// <summary>The block types this implementation supports.</summary>
    public static readonly string[] DownBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"], UpBlockTypes = ["CrossAttnUpBlock2D", "UpBlock2D"];

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public UNet2DConditionModel(ModelConfig config) : base(config)
    {
        config.RequireOneOf("time_embedding_type", "\"positional\"", "\"positional\"");
        config.RequireOneOf("act_fn", "\"silu\"", "\"silu\"");
        foreach (var key in new[] { "encoder_hid_dim", "encoder_hid_dim_type", "time_embedding_act_fn", "timestep_post_act",
                     "time_cond_proj_dim", "cross_attention_norm", "num_attention_heads", "reverse_transformer_layers_per_block" })
            if (config.Has(key)) throw config.Unsupported(key, config.Root.GetProperty(key).GetRawText(), "null");
        config.RequireOneOf("dual_cross_attention", "false", "false");
        config.RequireOneOf("class_embeddings_concat", "false", "false");
        config.RequireOneOf("attention_type", "\"default\"", "\"default\"");
        var timeShift = config.String("resnet_time_scale_shift", "default") ?? "default";
        if (timeShift is not ("default" or "scale_shift")) throw config.Unsupported("resnet_time_scale_shift", $"\"{timeShift}\"", "\"default\", \"scale_shift\"");

        _inChannels = config.Int("in_channels", 4);
        _outChannels = config.Int("out_channels", 4);
        _sampleSize = config.IntOrNull("sample_size", null) ?? 0;
        _centerInput = config.Bool("center_input_sample", false);
        var channels = config.IntList("block_out_channels", [320, 640, 1280, 1280]);
        int n = channels.Length;
        var downTypes = config.StringList("down_block_types", ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]);
        var upTypes = config.StringList("up_block_types", ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"]);
        if (downTypes.Length != n || upTypes.Length != n)
            throw config.Bad("down_block_types", $"{downTypes.Length} down and {upTypes.Length} up blocks", $"one per block_out_channels entry ({n})");
        var midType = config.String("mid_block_type", "UNetMidBlock2DCrossAttn");
        if (midType is not (null or "UNetMidBlock2DCrossAttn")) throw config.Unsupported("mid_block_type", $"\"{midType}\"", "\"UNetMidBlock2DCrossAttn\", null");
        var layers = config.IntList("layers_per_block", Enumerable.Repeat(2, n).ToArray(), n);
        var transformerLayers = config.IntList("transformer_layers_per_block", Enumerable.Repeat(1, n).ToArray(), n);
        var crossDims = config.IntList("cross_attention_dim", Enumerable.Repeat(1280, n).ToArray(), n);
        var heads = config.IntList("attention_head_dim", Enumerable.Repeat(8, n).ToArray(), n);
        var onlyCross = config.BoolList("only_cross_attention", false, n);
        bool linearProjection = config.Bool("use_linear_projection", false);
        int downPadding = config.Int("downsample_padding", 1);
        float midScale = (float)config.Number("mid_block_scale_factor", 1);
        int groups = config.IntOrNull("norm_num_groups", 32) ?? throw config.Unsupported("norm_num_groups", "null", "an integer");
        float eps = (float)config.Number("norm_eps", 1e-5);
        int convInKernel = config.Int("conv_in_kernel", 3), convOutKernel = config.Int("conv_out_kernel", 3);
        if (convInKernel % 2 != 1) throw config.Bad("conv_in_kernel", convInKernel.ToString(), "an odd kernel size");
        if (convOutKernel % 2 != 1) throw config.Bad("conv_out_kernel", convOutKernel.ToString(), "an odd kernel size");
        _crossDim = crossDims[0];

        int timeDim = config.IntOrNull("time_embedding_dim", null) ?? channels[0] * 4;
        _convIn = new Conv2d(Root, "conv_in", _inChannels, channels[0], convInKernel, 1, (convInKernel - 1) / 2);
        _timeProj = new Timesteps(channels[0], config.Bool("flip_sin_to_cos", true), (float)config.Number("freq_shift", 0));
        _timeEmbedding = new TimestepEmbedding(Root.Sub("time_embedding"), channels[0], timeDim);
        _classEmbedding = UNetClassEmbedding.Create(config, Root, _timeProj, channels[0], timeDim);
        _addEmbedding = UNetAdditionEmbedding.Create(config, Root, timeDim);

        SpatialTransformer Transformer(ParameterScope scope, int ch, int headCount, int blockLayers, int crossDim, bool onlyCrossAttention)
        {
            if (headCount < 1 || ch % headCount != 0)
                throw new ModelLoadException($"{config.Path}: '{scope.Path}': {ch} channels are not divisible into {headCount} heads (attention_head_dim is the head count here).");
            return new SpatialTransformer(scope, headCount, ch / headCount, ch, blockLayers, crossDim, groups, linearProjection, onlyCrossAttention);
        }

        _down = new UNetDownBlock[n];
        int output = channels[0];
        for (int i = 0; i < n; i++)
        {
            int input = output;
            output = channels[i];
            var scope = Root.Sub("down_blocks", i);
            if (!DownBlockTypes.Contains(downTypes[i])) throw config.Unsupported("down_block_types", $"\"{downTypes[i]}\"", string.Join(", ", DownBlockTypes));
            var resnets = Enumerable.Range(0, layers[i]).Select(j => new ResnetBlock2D(scope.Sub("resnets", j), j == 0 ? input : output, output, timeDim, groups, eps, timeShift)).ToArray();
            ISpatialMixer[]? mixers = downTypes[i] == "CrossAttnDownBlock2D"
                ? Enumerable.Range(0, layers[i]).Select(j => (ISpatialMixer)Transformer(scope.Sub("attentions", j), output, heads[i], transformerLayers[i], crossDims[i], onlyCross[i])).ToArray()
                : null;
            _down[i] = new UNetDownBlock(resnets, mixers, i == n - 1 ? null : new Downsample2D(scope.Sub("downsamplers", 0), output, output, downPadding));
        }

        if (midType is not null)
        {
            int mid = channels[^1];
            var midScope = Root.Sub("mid_block");
            var resnets = Enumerable.Range(0, 2).Select(j => new ResnetBlock2D(midScope.Sub("resnets", j), mid, mid, timeDim, groups, eps, timeShift, midScale)).ToArray();
            _mid = new UNetMidBlock(resnets, [Transformer(midScope.Sub("attentions", 0), mid, heads[^1], transformerLayers[^1], crossDims[^1], false)]);
        }

        var rChannels = channels.Reverse().ToArray();
        var rHeads = heads.Reverse().ToArray();
        var rLayers = layers.Reverse().ToArray();
        var rCross = crossDims.Reverse().ToArray();
        var rTransformer = transformerLayers.Reverse().ToArray();
        var rOnlyCross = onlyCross.Reverse().ToArray();
        _up = new UNetUpBlock[n];
        output = rChannels[0];
        for (int i = 0; i < n; i++)
        {
            int prev = output;
            output = rChannels[i];
            int input = rChannels[Math.Min(i + 1, n - 1)];
            var scope = Root.Sub("up_blocks", i);
            if (!UpBlockTypes.Contains(upTypes[i])) throw config.Unsupported("up_block_types", $"\"{upTypes[i]}\"", string.Join(", ", UpBlockTypes));
            int count = rLayers[i] + 1;
            var resnets = Enumerable.Range(0, count).Select(j =>
                new ResnetBlock2D(scope.Sub("resnets", j), (j == 0 ? prev : output) + (j == count - 1 ? input : output), output, timeDim, groups, eps, timeShift)).ToArray();
            ISpatialMixer[]? mixers = upTypes[i] == "CrossAttnUpBlock2D"
                ? Enumerable.Range(0, count).Select(j => (ISpatialMixer)Transformer(scope.Sub("attentions", j), output, rHeads[i], rTransformer[i], rCross[i], rOnlyCross[i])).ToArray()
                : null;
            _up[i] = new UNetUpBlock(resnets, mixers, i == n - 1 ? null : new Upsample2D(scope.Sub("upsamplers", 0), output, output));
        }
        _normOut = new GroupNorm(Root, "conv_norm_out", groups, channels[0], eps);
        _convOut = new Conv2d(Root, "conv_out", channels[0], _outChannels, convOutKernel, 1, (convOutKernel - 1) / 2);
        _downFactor = 1 << (n - 1);
        var midMixers = _mid?.Mixers ?? [];
        SelfAttentionLayers = _down.SelectMany(b => b.Mixers).Concat(midMixers).Concat(_up.SelectMany(b => b.Mixers)).SelectMany(m => m.SelfAttentions).ToList();
        _trunk = new UNetTrunk(_timeProj, _timeEmbedding, _classEmbedding, _centerInput, _convIn, _down, _mid, _up, _normOut, _convOut, _addEmbedding);
    }

    /// <inheritdoc />
    public override int InChannels => _inChannels;

    /// <inheritdoc />
    public override int OutChannels => _outChannels;

    /// <inheritdoc />
    public override int SizeMultiple => _downFactor;

    /// <inheritdoc />
    public override int SampleSize => _sampleSize;

    /// <inheritdoc />
    public override int? ClassCount => _classEmbedding?.Rows;

    /// <inheritdoc />
    public override bool NeedsEncoderHiddenStates => true;

    /// <summary>
    /// Whether the UNet takes SDXL's added conditioning (<c>addition_embed_type: "text_time"</c>), passed as
    /// <see cref="DenoiserInputs.PooledProjections"/> [B, text_embeds width + 6]: the pooled text embedding,
    /// then the six add_time_ids.
    /// </summary>
    public override bool NeedsPooledProjections => _addEmbedding is not null;

    /// <summary>SDXL's added conditioning, or null.</summary>
    public UNetAdditionEmbedding? AdditionEmbedding => _addEmbedding;

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
        int b = CheckImageInputs(inputs, _inChannels, _downFactor, _classEmbedding is not null);
        var context = inputs.EncoderHiddenStates ?? throw new ArgumentException($"{Config.ClassName} from {Config.Path} needs encoder_hidden_states.");
        RequireDevice(context, "encoder_hidden_states");
        if (context.Rank != 3 || context.Dim(0) != b || context.Dim(2) != _crossDim)
            throw new ArgumentException($"encoder_hidden_states {context} should be [{b}, L, {_crossDim}].");

        var t = ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        if (_addEmbedding is not null && inputs.PooledProjections is null)
            throw new ArgumentException($"{Config.ClassName} from {Config.Path} (addition_embed_type text_time) needs text_embeds and time_ids (pooled projections).");
        if (inputs.PooledProjections is { } added) RequireDevice(added, "added_cond_kwargs");
        try { return _trunk.Forward(sample, t, inputs.ClassLabels, context, _addEmbedding is null ? null : inputs.PooledProjections, Activations); }
        finally { if (ownsT) t.Dispose(); }
    }
}
