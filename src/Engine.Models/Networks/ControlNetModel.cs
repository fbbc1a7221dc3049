using Engine.Core;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>ControlNetModel</c>: a copy of a conditional UNet's encoder (conv_in, time / SDXL added embedding,
/// down and mid blocks, built by the same <see cref="ConditionalUNetLayout"/> as <see cref="UNet2DConditionModel"/>)
/// whose input is the noisy latents plus the embedded control image, and whose skips and mid output each pass a 1x1
/// "zero convolution" to become the residuals the UNet adds to its own (see <see cref="UNetResiduals"/>).
/// </summary>
public sealed class ControlNetModel : Network
{
    private readonly UNetEncoder _encoder;
    private readonly ControlNetConditioningEmbedding _condEmbedding;
    private readonly Conv2d[] _zeroConvs;
    private readonly Conv2d _midZeroConv;
    private readonly int _downFactor;

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public ControlNetModel(ModelConfig config) : base(config)
    {
        config.RequireOneOf("controlnet_conditioning_channel_order", "\"rgb\"", "\"rgb\"");
        config.RequireOneOf("global_pool_conditions", "false", "false");
        var layout = new ConditionalUNetLayout(config);
        if (layout.MidType is null) throw config.Unsupported("mid_block_type", "null", "\"UNetMidBlock2DCrossAttn\"");
        if (config.Has("num_class_embeds") || config.Has("class_embed_type"))
            throw config.Unsupported(config.Has("num_class_embeds") ? "num_class_embeds" : "class_embed_type", "a class embedding", "null");
        Layout = layout;
        _encoder = layout.BuildEncoder(Root);
        int conditioningChannels = config.Int("conditioning_channels", 3);
        if (conditioningChannels < 1) throw config.Bad("conditioning_channels", conditioningChannels.ToString(), "a positive integer");
        var widths = config.IntList("conditioning_embedding_out_channels", [16, 32, 96, 256]);
        if (widths.Length < 1) throw config.Bad("conditioning_embedding_out_channels", "[]", "at least one width");
        _condEmbedding = new ControlNetConditioningEmbedding(Root.Sub("controlnet_cond_embedding"), conditioningChannels, widths, layout.Channels[0]);

        // One zero conv per skip the UNet keeps.
        var skipChannels = layout.SkipChannels;
        _zeroConvs = skipChannels.Select((c, j) => new Conv2d(Root, $"controlnet_down_blocks.{j}", c, c, 1)).ToArray();
        _midZeroConv = new Conv2d(Root, "controlnet_mid_block", layout.Channels[^1], layout.Channels[^1], 1);
        ResidualChannels = skipChannels;
        _downFactor = layout.DownFactor;
    }

    internal ConditionalUNetLayout Layout { get; }

    /// <summary>Channels of the latent sample.</summary>
    public int InChannels => Layout.InChannels;

    /// <summary>Channels of the control image (<c>conditioning_channels</c>).</summary>
    public int ConditioningChannels => _condEmbedding.ConditioningChannels;

    /// <summary>Factor from the control image's sides to the latent's (2^(len(conditioning_embedding_out_channels) - 1)).</summary>
    public int EmbeddingDownFactor => _condEmbedding.DownFactor;

    /// <summary>Width of the encoder hidden states (first cross_attention_dim).</summary>
    public int CrossAttentionDim => Layout.CrossDims[0];

    /// <summary>block_out_channels of the configuration.</summary>
    public IReadOnlyList<int> BlockChannels => Layout.Channels;

    /// <summary>Channels of each down residual, in order (one per skip of the UNet it steers).</summary>
    public IReadOnlyList<int> ResidualChannels { get; }

    /// <summary>SDXL's added conditioning, or null.</summary>
    public UNetAdditionEmbedding? AdditionEmbedding => _encoder.Addition;

    /// <summary>
    /// The per-residual multipliers: <see cref="ControlNetInputs.Scale"/> for every residual, or in guess mode
    /// logspace(-1, 0, n + 1) (in float32, as torch makes it) times the scale, the last entry for the mid residual.
    /// </summary>
    public float[] ResidualScales(float scale, bool guessMode)
    {
        int n = _zeroConvs.Length;
        var scales = new float[n + 1];
        for (int k = 0; k <= n; k++)
            scales[k] = guessMode ? (float)Math.Pow(10, -1 + (double)k / n) * scale : scale;
        return scales;
    }

    /// <summary>
    /// Runs the ControlNet; returns the scaled residuals (owned by the caller: dispose them). Throws naming the
    /// input whose shape does not fit the configuration.
    /// </summary>
    public UNetResiduals Forward(ControlNetInputs inputs)
    {
        var device = RequireDevice(inputs.Sample, "sample");
        var sample = inputs.Sample;
        if (sample.Rank != 4 || sample.Dim(1) != InChannels) throw new ArgumentException($"sample {sample} should be [B, {InChannels}, h, w].");
        int b = sample.Dim(0), h = sample.Dim(2), w = sample.Dim(3);
        if (h % _downFactor != 0 || w % _downFactor != 0)
            throw new ArgumentException($"sample {sample}: height and width must be multiples of {_downFactor} for this {Config.ClassName}.");
        RequireDevice(inputs.Timestep, "timestep");
        var context = inputs.EncoderHiddenStates;
        RequireDevice(context, "encoder_hidden_states");
        if (context.Rank != 3 || context.Dim(0) != b || context.Dim(2) != CrossAttentionDim)
            throw new ArgumentException($"encoder_hidden_states {context} should be [{b}, L, {CrossAttentionDim}].");
        var image = inputs.ControlImage;
        RequireDevice(image, "controlnet_cond");
        int f = EmbeddingDownFactor;
        if (image.Rank != 4 || image.Dim(0) != b || image.Dim(1) != ConditioningChannels || image.Dim(2) != h * f || image.Dim(3) != w * f)
            throw new ArgumentException($"controlnet_cond {image} should be [{b}, {ConditioningChannels}, {h * f}, {w * f}] (conditioning_channels, the latent size times {f}).");
        if (_encoder.Addition is not null && inputs.Added is null)
            throw new ArgumentException($"{Config.ClassName} from {Config.Path} (addition_embed_type text_time) needs text_embeds and time_ids.");
        if (inputs.Added is { } added) RequireDevice(added, "added_cond_kwargs");
        if (!float.IsFinite(inputs.Scale)) throw new ArgumentException($"conditioning_scale {inputs.Scale} must be finite.");

        var t = DiffusionModel.ExpandTimesteps(inputs.Timestep, b, out bool ownsT);
        var skips = new List<Tensor>();
        var down = new List<Tensor>();
        Tensor? emb = null, mid = null, midResidual = null;
        try
        {
            emb = _encoder.Embed(t, null, _encoder.Addition is null ? null : inputs.Added);
            using (var cond = _condEmbedding.Forward(image)) mid = _encoder.Encode(sample, emb, context, skips, cond);
            var scales = ResidualScales(inputs.Scale, inputs.GuessMode);
            for (int j = 0; j < skips.Count; j++)
            {
                var r = _zeroConvs[j].Forward(skips[j]);
                down.Add(r);
                if (scales[j] != 1f) device.Affine(r, r, scales[j], 0f);
            }
            midResidual = _midZeroConv.Forward(mid);
            if (scales[^1] != 1f) device.Affine(midResidual, midResidual, scales[^1], 0f);
            return new UNetResiduals(down, midResidual);
        }
        catch
        {
            foreach (var r in down) r.Dispose();
            midResidual?.Dispose();
            throw;
        }
        finally
        {
            foreach (var s in skips) s.Dispose();
            mid?.Dispose();
            emb?.Dispose();
            if (ownsT) t.Dispose();
        }
    }
}
