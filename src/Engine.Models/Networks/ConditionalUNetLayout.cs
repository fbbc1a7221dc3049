using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// The configuration of a text-conditional UNet encoder as diffusers reads it (UNet2DConditionModel and
/// ControlNetModel share these keys and defaults), and the one builder of that encoder: conv_in, the
/// time / class / SDXL added embeddings, CrossAttnDownBlock2D / DownBlock2D and UNetMidBlock2DCrossAttn.
/// Beware the diffusers naming: <c>attention_head_dim</c> is the number of heads per block.
/// </summary>
internal sealed class ConditionalUNetLayout
{
    /// <summary>The down block types this implementation supports.</summary>
    public static readonly string[] DownBlockTypes = ["CrossAttnDownBlock2D", "DownBlock2D"];

    private readonly ModelConfig _config;

    /// <summary>Reads and checks the encoder keys of <paramref name="config"/>.</summary>
    public ConditionalUNetLayout(ModelConfig config)
    {
        _config = config;
        config.RequireOneOf("act_fn", "\"silu\"", "\"silu\"");
        foreach (var key in new[] { "encoder_hid_dim", "encoder_hid_dim_type", "time_embedding_act_fn", "timestep_post_act",
                     "time_cond_proj_dim", "cross_attention_norm", "num_attention_heads", "reverse_transformer_layers_per_block" })
            if (config.Has(key)) throw config.Unsupported(key, config.Root.GetProperty(key).GetRawText(), "null");
        config.RequireOneOf("class_embeddings_concat", "false", "false");
        TimeShift = config.String("resnet_time_scale_shift", "default") ?? "default";
        if (TimeShift is not ("default" or "scale_shift")) throw config.Unsupported("resnet_time_scale_shift", $"\"{TimeShift}\"", "\"default\", \"scale_shift\"");

        InChannels = config.Int("in_channels", 4);
        CenterInput = config.Bool("center_input_sample", false);
        Channels = config.IntList("block_out_channels", [320, 640, 1280, 1280]);
        int n = Channels.Length;
        DownTypes = config.StringList("down_block_types", ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"]);
        if (DownTypes.Length != n) throw config.Bad("down_block_types", $"{DownTypes.Length} down blocks", $"one per block_out_channels entry ({n})");
        foreach (var type in DownTypes)
            if (!DownBlockTypes.Contains(type)) throw config.Unsupported("down_block_types", $"\"{type}\"", string.Join(", ", DownBlockTypes));
        MidType = config.String("mid_block_type", "UNetMidBlock2DCrossAttn");
        if (MidType is not (null or "UNetMidBlock2DCrossAttn")) throw config.Unsupported("mid_block_type", $"\"{MidType}\"", "\"UNetMidBlock2DCrossAttn\", null");
        Layers = config.IntList("layers_per_block", Enumerable.Repeat(2, n).ToArray(), n);
        TransformerLayers = config.IntList("transformer_layers_per_block", Enumerable.Repeat(1, n).ToArray(), n);
        CrossDims = config.IntList("cross_attention_dim", Enumerable.Repeat(1280, n).ToArray(), n);
        Heads = config.IntList("attention_head_dim", Enumerable.Repeat(8, n).ToArray(), n);
        OnlyCross = config.BoolList("only_cross_attention", false, n);
        LinearProjection = config.Bool("use_linear_projection", false);
        DownPadding = config.Int("downsample_padding", 1);
        MidScale = (float)config.Number("mid_block_scale_factor", 1);
        Groups = config.IntOrNull("norm_num_groups", 32) ?? throw config.Unsupported("norm_num_groups", "null", "an integer");
        Eps = (float)config.Number("norm_eps", 1e-5);
        ConvInKernel = config.Int("conv_in_kernel", 3);
        if (ConvInKernel % 2 != 1) throw config.Bad("conv_in_kernel", ConvInKernel.ToString(), "an odd kernel size");
        TimeDim = config.IntOrNull("time_embedding_dim", null) ?? Channels[0] * 4;
    }

    public int InChannels { get; }
    public bool CenterInput { get; }
    public int[] Channels { get; }
    public string[] DownTypes { get; }
    public string? MidType { get; }
    public int[] Layers { get; }
    public int[] TransformerLayers { get; }
    public int[] CrossDims { get; }
    public int[] Heads { get; }
    public bool[] OnlyCross { get; }
    public bool LinearProjection { get; }
    public int DownPadding { get; }
    public float MidScale { get; }
    public int Groups { get; }
    public float Eps { get; }
    public int ConvInKernel { get; }
    public int TimeDim { get; }
    public string TimeShift { get; }

    /// <summary>Channels of each skip the down path keeps: conv_in's output, then every resnet and downsampler output.</summary>
    public IReadOnlyList<int> SkipChannels
    {
        get
        {
            var skips = new List<int> { Channels[0] };
            for (int i = 0; i < Channels.Length; i++)
            {
                skips.AddRange(Enumerable.Repeat(Channels[i], Layers[i]));
                if (i < Channels.Length - 1) skips.Add(Channels[i]);
            }
            return skips;
        }
    }

    /// <summary>Spatial factor of the down path: the sample's sides must be multiples of it.</summary>
    public int DownFactor => 1 << (Channels.Length - 1);

    /// <summary>A spatial transformer of <paramref name="headCount"/> heads over <paramref name="ch"/> channels.</summary>
    public SpatialTransformer Transformer(ParameterScope scope, int ch, int headCount, int blockLayers, int crossDim, bool onlyCrossAttention)
    {
        if (headCount < 1 || ch % headCount != 0)
            throw new ModelLoadException($"{_config.Path}: '{scope.Path}': {ch} channels are not divisible into {headCount} heads (attention_head_dim is the head count here).");
        return new SpatialTransformer(scope, headCount, ch / headCount, ch, blockLayers, crossDim, Groups, LinearProjection, onlyCrossAttention);
    }

    /// <summary>A resnet of the encoder's kind (groups, eps, time-embedding width and shift).</summary>
    public ResnetBlock2D Resnet(ParameterScope scope, int input, int output, float outputScale = 1f) =>
        new(scope, input, output, TimeDim, Groups, Eps, TimeShift, outputScale);

    /// <summary>Declares the encoder's parameters in <paramref name="root"/> under diffusers' names and builds it.</summary>
    public UNetEncoder BuildEncoder(ParameterScope root)
    {
        var channels = Channels;
        int n = channels.Length;
        var convIn = new Conv2d(root, "conv_in", InChannels, channels[0], ConvInKernel, 1, (ConvInKernel - 1) / 2);
        var timeProj = new Timesteps(channels[0], _config.Bool("flip_sin_to_cos", true), (float)_config.Number("freq_shift", 0));
        var timeEmbedding = new TimestepEmbedding(root.Sub("time_embedding"), channels[0], TimeDim);
        var classEmbedding = UNetClassEmbedding.Create(_config, root, timeProj, channels[0], TimeDim);
        var addEmbedding = UNetAdditionEmbedding.Create(_config, root, TimeDim);

        var down = new UNetDownBlock[n];
        int output = channels[0];
        for (int i = 0; i < n; i++)
        {
            int input = output;
            output = channels[i];
            var scope = root.Sub("down_blocks", i);
            var resnets = Enumerable.Range(0, Layers[i]).Select(j => Resnet(scope.Sub("resnets", j), j == 0 ? input : output, output)).ToArray();
            ISpatialMixer[]? mixers = DownTypes[i] == "CrossAttnDownBlock2D"
                ? Enumerable.Range(0, Layers[i]).Select(j => (ISpatialMixer)Transformer(scope.Sub("attentions", j), output, Heads[i], TransformerLayers[i], CrossDims[i], OnlyCross[i])).ToArray()
                : null;
            down[i] = new UNetDownBlock(resnets, mixers, i == n - 1 ? null : new Downsample2D(scope.Sub("downsamplers", 0), output, output, DownPadding));
        }

        UNetMidBlock? mid = null;
        if (MidType is not null)
        {
            int width = channels[^1];
            var midScope = root.Sub("mid_block");
            var resnets = Enumerable.Range(0, 2).Select(j => Resnet(midScope.Sub("resnets", j), width, width, MidScale)).ToArray();
            mid = new UNetMidBlock(resnets, [Transformer(midScope.Sub("attentions", 0), width, Heads[^1], TransformerLayers[^1], CrossDims[^1], false)]);
        }
        return new UNetEncoder(timeProj, timeEmbedding, classEmbedding, CenterInput, convIn, down, mid, addEmbedding);
    }
}
