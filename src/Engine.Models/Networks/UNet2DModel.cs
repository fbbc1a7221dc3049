using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>UNet2DModel</c> (DDPM-style unconditional or class-conditional UNet) with positional
/// time embeddings, DownBlock2D/AttnDownBlock2D and UpBlock2D/AttnUpBlock2D, conv down/up sampling
/// and the UNetMidBlock2D. Here <c>attention_head_dim</c> is the width of one head (None: one head
/// spanning all channels).
/// </summary>
public sealed class UNet2DModel : DiffusionModel
{
    private readonly Timesteps _timeProj;
    private readonly TimestepEmbedding _timeEmbedding;
    private readonly UNetClassEmbedding? _classEmbedding;
    private readonly Conv2d _convIn, _convOut;
    private readonly UNetDownBlock[] _down;
    private readonly UNetMidBlock _mid;
    private readonly UNetUpBlock[] _up;
    private readonly GroupNorm _normOut;
    private readonly UNetTrunk _trunk;
    private readonly bool _centerInput;
    private readonly int _inChannels, _outChannels, _sampleSize, _downFactor;

    /// <summary>The block types this implementation supports.</summary>
    public static readonly string[] DownBlockTypes = ["DownBlock2D", "AttnDownBlock2D"], UpBlockTypes = ["UpBlock2D", "AttnUpBlock2D"];

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public UNet2DModel(ModelConfig config) : base(config)
    {
        config.RequireOneOf("time_embedding_type", "\"positional\"", "\"positional\"");
        config.RequireOneOf("act_fn", "\"silu\"", "\"silu\"");
        config.RequireOneOf("downsample_type", "\"conv\"", "\"conv\"");
        config.RequireOneOf("upsample_type", "\"conv\"", "\"conv\"");
        var timeShift = config.String("resnet_time_scale_shift", "default") ?? "default";
        if (timeShift is not ("default" or "scale_shift")) throw config.Unsupported("resnet_time_scale_shift", $"\"{timeShift}\"", "\"default\", \"scale_shift\"");

        _inChannels = config.Int("in_channels", 3);
        _outChannels = config.Int("out_channels", 3);
        _sampleSize = config.IntOrNull("sample_size", null) ?? 0;
        _centerInput = config.Bool("center_input_sample", false);
        var channels = config.IntList("block_out_channels", [224, 448, 672, 896]);
        var downTypes = config.StringList("down_block_types", ["DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"]);
        var upTypes = config.StringList("up_block_types", ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"]);
        if (downTypes.Length != channels.Length || upTypes.Length != channels.Length)
            throw config.Bad("down_block_types", $"{downTypes.Length} down and {upTypes.Length} up blocks", $"one per block_out_channels entry ({channels.Length})");
        int layers = config.Int("layers_per_block", 2);
        float midScale = (float)config.Number("mid_block_scale_factor", 1);
        int downPadding = config.Int("downsample_padding", 1);
        int? headDim = config.IntOrNull("attention_head_dim", 8);
        int groups = config.IntOrNull("norm_num_groups", 32) ?? throw config.Unsupported("norm_num_groups", "null", "an integer");
        int? attnGroups = config.IntOrNull("attn_norm_num_groups", null);
        float eps = (float)config.Number("norm_eps", 1e-5);
        bool addAttention = config.Bool("add_attention", true);

        _timeProj = new Timesteps(channels[0], config.Bool("flip_sin_to_cos", true), (float)config.Number("freq_shift", 0));
        int timeDim = channels[0] * 4;
        _convIn = new Conv2d(Root, "conv_in", _inChannels, channels[0], 3, 1, 1);
        _timeEmbedding = new TimestepEmbedding(Root.Sub("time_embedding"), channels[0], timeDim);
        _classEmbedding = UNetClassEmbedding.Create(config, Root, _timeProj, channels[0], timeDim);

        _down = new UNetDownBlock[channels.Length];
        int output = channels[0];
        for (int i = 0; i < channels.Length; i++)
        {
            int input = output;
            output = channels[i];
            bool final = i == channels.Length - 1;
            var scope = Root.Sub("down_blocks", i);
            if (!DownBlockTypes.Contains(downTypes[i])) throw config.Unsupported("down_block_types", $"\"{downTypes[i]}\"", string.Join(", ", DownBlockTypes));
            var resnets = Enumerable.Range(0, layers).Select(j => new ResnetBlock2D(scope.Sub("resnets", j), j == 0 ? input : output, output, timeDim, groups, eps, timeShift)).ToArray();
            ISpatialMixer[]? mixers = downTypes[i] == "AttnDownBlock2D"
                ? Enumerable.Range(0, layers).Select(j => (ISpatialMixer)SpatialAttention(scope.Sub("attentions", j), output, headDim ?? output, groups, eps, 1f)).ToArray()
                : null;
            var downsampler = final ? null : new Downsample2D(scope.Sub("downsamplers", 0), output, output, downPadding);
            _down[i] = new UNetDownBlock(resnets, mixers, downsampler);
        }

        int mid = channels[^1];
        var midScope = Root.Sub("mid_block");
        var midResnets = Enumerable.Range(0, 2).Select(j => new ResnetBlock2D(midScope.Sub("resnets", j), mid, mid, timeDim, groups, eps, timeShift, midScale)).ToArray();
        int? midAttnGroups = attnGroups ?? (timeShift == "default" ? groups : null);
        _mid = new UNetMidBlock(midResnets, addAttention ? [SpatialAttention(midScope.Sub("attentions", 0), mid, headDim ?? mid, midAttnGroups, eps, midScale)] : null);

        var reversed = channels.Reverse().ToArray();
        _up = new UNetUpBlock[channels.Length];
        output = reversed[0];
        for (int i = 0; i < channels.Length; i++)
        {
            int prev = output;
            output = reversed[i];
            int input = reversed[Math.Min(i + 1, channels.Length - 1)];
            bool final = i == channels.Length - 1;
            var scope = Root.Sub("up_blocks", i);
            if (!UpBlockTypes.Contains(upTypes[i])) throw config.Unsupported("up_block_types", $"\"{upTypes[i]}\"", string.Join(", ", UpBlockTypes));
            int count = layers + 1;
            var resnets = Enumerable.Range(0, count).Select(j =>
            {
                int skip = j == count - 1 ? input : output;
                int resIn = j == 0 ? prev : output;
                return new ResnetBlock2D(scope.Sub("resnets", j), resIn + skip, output, timeDim, groups, eps, timeShift);
            }).ToArray();
            ISpatialMixer[]? mixers = upTypes[i] == "AttnUpBlock2D"
                ? Enumerable.Range(0, count).Select(j => (ISpatialMixer)SpatialAttention(scope.Sub("attentions", j), output, headDim ?? output, groups, eps, 1f)).ToArray()
                : null;
            _up[i] = new UNetUpBlock(resnets, mixers, final ? null : new Upsample2D(scope.Sub("upsamplers", 0), output, output));
        }
        _normOut = new GroupNorm(Root, "conv_norm_out", groups, channels[0], eps);
        _convOut = new Conv2d(Root, "conv_out", channels[0], _outChannels, 3, 1, 1);
        _downFactor = 1 << (channels.Length - 1);
        SelfAttentionLayers = _down.SelectMany(b => b.Mixers).Concat(_mid.Mixers).Concat(_up.SelectMany(b => b.Mixers)).SelectMany(m => m.SelfAttentions).ToList();
        _trunk = new UNetTrunk(new UNetEncoder(_timeProj, _timeEmbedding, _classEmbedding, _centerInput, _convIn, _down, _mid), _up, _normOut, _convOut);
    }

    private static Attention SpatialAttention(ParameterScope scope, int channels, int headDim, int? groups, float eps, float rescale)
    {
        if (headDim < 1 || channels % headDim != 0)
            throw new ModelLoadException($"'{scope.Path}': {channels} channels are not divisible into heads of attention_head_dim {headDim}.");
        return new Attention(scope, channels, channels / headDim, headDim, bias: true, normGroups: groups, eps: eps,
            residualConnection: true, rescaleOutputFactor: rescale, legacyNames: true);
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
    public override IReadOnlyList<ISelfAttention> SelfAttentionLayers { get; }

    /// <inheritdoc />
    public override IReadOnlyList<string> DefaultPerturbedLayerPrefixes => ["mid_block"];

    /// <inheritdoc />
    public override Tensor Forward(DenoiserInputs inputs)
    {
        var sample = inputs.Sample;
        int b = CheckImageInputs(inputs, _inChannels, _downFactor, _classEmbedding is not null);

        var t = ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        try { return _trunk.Forward(sample, t, inputs.ClassLabels, null, activations: Activations); }
        finally { if (ownsT) t.Dispose(); }
    }
}
