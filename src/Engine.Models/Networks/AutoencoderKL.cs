using Engine.Core;
using Engine.Models.Binding;
using Engine.Models.Modules;

namespace Engine.Models.Networks;

/// <summary>
/// diffusers <c>AutoencoderKL</c>: the encoder (DownEncoderBlock2D stack, attention mid block,
/// double-width output) with <c>quant_conv</c> gives the diagonal Gaussian (mean, logvar clamped to
/// [-30, 20], std = exp(logvar / 2)); the decoder applies <c>post_quant_conv</c> then the
/// UpDecoderBlock2D stack. Neither applies <c>scaling_factor</c>; callers scale latents themselves.
/// </summary>
public sealed class AutoencoderKL : Network
{
    private readonly Conv2d _encConvIn, _encConvOut, _decConvIn, _decConvOut;
    private readonly UNetDownBlock[] _encDown;
    private readonly UNetMidBlock _encMid, _decMid;
    private readonly UNetUpBlock[] _decUp;
    private readonly GroupNorm _encNormOut, _decNormOut;
    private readonly Conv2d? _quantConv, _postQuantConv;
    private readonly int _latent, _inChannels, _outChannels, _downFactor;

    /// <summary>Builds the network from <paramref name="config"/> (no weights).</summary>
    public AutoencoderKL(ModelConfig config) : base(config)
    {
        config.RequireOneOf("act_fn", "\"silu\"", "\"silu\"");
        _inChannels = config.Int("in_channels", 3);
        _outChannels = config.Int("out_channels", 3);
        var channels = config.IntList("block_out_channels", [64]);
        int n = channels.Length;
        var downTypes = config.StringList("down_block_types", ["DownEncoderBlock2D"]);
        var upTypes = config.StringList("up_block_types", ["UpDecoderBlock2D"]);
        if (downTypes.Length != n || upTypes.Length != n)
            throw config.Bad("down_block_types", $"{downTypes.Length} down and {upTypes.Length} up blocks", $"one per block_out_channels entry ({n})");
        foreach (var t in downTypes) if (t != "DownEncoderBlock2D") throw config.Unsupported("down_block_types", $"\"{t}\"", "DownEncoderBlock2D");
        foreach (var t in upTypes) if (t != "UpDecoderBlock2D") throw config.Unsupported("up_block_types", $"\"{t}\"", "UpDecoderBlock2D");
        int layers = config.Int("layers_per_block", 1);
        _latent = config.Int("latent_channels", 4);
        int groups = config.Int("norm_num_groups", 32);
        bool midAttention = config.Bool("mid_block_add_attention", true);
        ScalingFactor = (float)config.Number("scaling_factor", 0.18215);
        ShiftFactor = config.Has("shift_factor") ? (float)config.Number("shift_factor", 0) : null;
        const float eps = 1e-6f;

        // Encoder.
        var enc = Root.Sub("encoder");
        _encConvIn = new Conv2d(enc, "conv_in", _inChannels, channels[0], 3, 1, 1);
        _encDown = new UNetDownBlock[n];
        int output = channels[0];
        for (int i = 0; i < n; i++)
        {
            int input = output;
            output = channels[i];
            var scope = enc.Sub("down_blocks", i);
            var resnets = Enumerable.Range(0, layers).Select(j => new ResnetBlock2D(scope.Sub("resnets", j), j == 0 ? input : output, output, null, groups, eps)).ToArray();
            _encDown[i] = new UNetDownBlock(resnets, null, i == n - 1 ? null : new Downsample2D(scope.Sub("downsamplers", 0), output, output, 0));
        }
        _encMid = MidBlock(enc.Sub("mid_block"), channels[^1], groups, eps, midAttention);
        _encNormOut = new GroupNorm(enc, "conv_norm_out", groups, channels[^1], eps);
        _encConvOut = new Conv2d(enc, "conv_out", channels[^1], 2 * _latent, 3, 1, 1);

        // Decoder.
        var dec = Root.Sub("decoder");
        _decConvIn = new Conv2d(dec, "conv_in", _latent, channels[^1], 3, 1, 1);
        _decMid = MidBlock(dec.Sub("mid_block"), channels[^1], groups, eps, midAttention);
        var reversed = channels.Reverse().ToArray();
        _decUp = new UNetUpBlock[n];
        output = reversed[0];
        for (int i = 0; i < n; i++)
        {
            int prev = output;
            output = reversed[i];
            var scope = dec.Sub("up_blocks", i);
            var resnets = Enumerable.Range(0, layers + 1).Select(j => new ResnetBlock2D(scope.Sub("resnets", j), j == 0 ? prev : output, output, null, groups, eps)).ToArray();
            _decUp[i] = new UNetUpBlock(resnets, null, i == n - 1 ? null : new Upsample2D(scope.Sub("upsamplers", 0), output, output));
        }
        _decNormOut = new GroupNorm(dec, "conv_norm_out", groups, channels[0], eps);
        _decConvOut = new Conv2d(dec, "conv_out", channels[0], _outChannels, 3, 1, 1);

        if (config.Bool("use_quant_conv", true)) _quantConv = new Conv2d(Root, "quant_conv", 2 * _latent, 2 * _latent, 1);
        if (config.Bool("use_post_quant_conv", true)) _postQuantConv = new Conv2d(Root, "post_quant_conv", _latent, _latent, 1);
        _downFactor = 1 << (n - 1);
    }

    private static UNetMidBlock MidBlock(ParameterScope scope, int channels, int groups, float eps, bool attention)
    {
        var resnets = Enumerable.Range(0, 2).Select(j => new ResnetBlock2D(scope.Sub("resnets", j), channels, channels, null, groups, eps)).ToArray();
        ISpatialMixer[]? mixers = attention
            ? [new Attention(scope.Sub("attentions", 0), channels, 1, channels, bias: true, normGroups: groups, eps: eps, residualConnection: true, legacyNames: true)]
            : null;
        return new UNetMidBlock(resnets, mixers);
    }

    /// <summary>Latent channels.</summary>
    public int LatentChannels => _latent;

    /// <summary>Image channels in.</summary>
    public int InChannels => _inChannels;

    /// <summary>Image channels out.</summary>
    public int OutChannels => _outChannels;

    /// <summary>Spatial reduction from image to latent.</summary>
    public int DownscaleFactor => _downFactor;

    /// <summary>The configured <c>scaling_factor</c> (not applied by <see cref="Encode"/> or <see cref="Decode"/>).</summary>
    public float ScalingFactor { get; }

    /// <summary>The configured <c>shift_factor</c>, if any (not applied here either).</summary>
    public float? ShiftFactor { get; }

    /// <summary>The latent distribution of an image batch; the caller disposes it.</summary>
    public sealed record LatentDistribution(Tensor Mean, Tensor LogVar, Tensor Std) : IDisposable
    {
        /// <inheritdoc />
        public void Dispose()
        {
            Mean.Dispose(); LogVar.Dispose(); Std.Dispose();
        }
    }

    /// <summary>Encodes images [B, in, H, W] into the latent distribution ([B, latent, H/f, W/f] each).</summary>
    public LatentDistribution Encode(Tensor image)
    {
        var device = RequireDevice(image, "image");
        if (image.Rank != 4 || image.Dim(1) != _inChannels || image.Dim(2) % _downFactor != 0 || image.Dim(3) % _downFactor != 0)
            throw new ArgumentException($"image {image} should be [B, {_inChannels}, H, W] with H and W multiples of {_downFactor}.");
        var owned = new List<Tensor>();
        Tensor features;
        try { features = EncoderFeatures(ToActivations(image, owned)!); }
        finally { foreach (var t in owned) t.Dispose(); }
        using var _ = features;
        Tensor mean, rawLogVar;
        if (_quantConv is not null)
        {
            using var moments = _encConvOut.Forward(features);
            mean = ToFloat32(_quantConv.ForwardChunk(moments, 0, _latent));
            rawLogVar = ToFloat32(_quantConv.ForwardChunk(moments, _latent, _latent));
        }
        else
        {
            mean = ToFloat32(_encConvOut.ForwardChunk(features, 0, _latent));
            rawLogVar = ToFloat32(_encConvOut.ForwardChunk(features, _latent, _latent));
        }
        // The distribution (and the latents drawn from it) is float32.
        using (rawLogVar)
        {
            var logVar = Clamp(rawLogVar, -30f, 20f);
            var std = HalfExp(logVar);
            return new LatentDistribution(mean, logVar, std);
        }
    }

    /// <summary>The encoder output followed by <c>quant_conv</c> (mean channels, then raw logvar channels).</summary>
    public Tensor EncodeMoments(Tensor image)
    {
        RequireDevice(image, "image");
        var owned = new List<Tensor>();
        try
        {
            using var features = EncoderFeatures(ToActivations(image, owned)!);
            using var moments = _encConvOut.Forward(features);
            if (_quantConv is null)
            {
                var copy = image.Device.Allocate(DType.F32, moments.ShapeArray());
                image.Device.Copy(moments, copy);
                return copy;
            }
            return ToFloat32(_quantConv.Forward(moments));
        }
        finally { foreach (var t in owned) t.Dispose(); }
    }

    /// <summary>
    /// The latent distribution of moments [B, 2 latent, h, w] (mean channels, then raw log-variance, as
    /// <see cref="EncodeMoments"/> gives them; for example blended from tiles).
    /// </summary>
    public LatentDistribution FromMoments(Tensor moments)
    {
        var device = RequireDevice(moments, "moments");
        if (moments.Rank != 4 || moments.Dim(1) != 2 * _latent) throw new ArgumentException($"moments {moments} should be [B, {2 * _latent}, h, w].");
        int[] shape = [moments.Dim(0), _latent, moments.Dim(2), moments.Dim(3)];
        var mean = device.Allocate(shape);
        try
        {
            using var rawLogVar = device.Allocate(shape);
            device.SliceChannels(moments, 0, mean);
            device.SliceChannels(moments, _latent, rawLogVar);
            var logVar = Clamp(rawLogVar, -30f, 20f);
            return new LatentDistribution(mean, logVar, HalfExp(logVar));
        }
        catch
        {
            mean.Dispose();
            throw;
        }
    }

    /// <summary>Decodes latents [B, latent, h, w] into images [B, out, h*f, w*f].</summary>
    public Tensor Decode(Tensor latent)
    {
        RequireDevice(latent, "latent");
        if (latent.Rank != 4 || latent.Dim(1) != _latent) throw new ArgumentException($"latent {latent} should be [B, {_latent}, h, w].");
        var owned = new List<Tensor>();
        using var z = _postQuantConv?.Forward(ToActivations(latent, owned)!);
        var current = _decConvIn.Forward(z ?? ToActivations(latent, owned)!);
        try
        {
            var m = _decMid.Forward(current, null, null);
            current.Dispose();
            current = m;
            foreach (var block in _decUp)
            {
                var next = block.Forward(current, null, null, null);
                current.Dispose();
                current = next;
            }
            using var normed = _decNormOut.Forward(current, silu: true);
            return ToFloat32(_decConvOut.Forward(normed));
        }
        finally
        {
            current.Dispose();
            foreach (var t in owned) t.Dispose();
        }
    }

    private Tensor EncoderFeatures(Tensor image)
    {
        var current = _encConvIn.Forward(image);
        try
        {
            foreach (var block in _encDown)
            {
                var next = block.Forward(current, null, null, null);
                current.Dispose();
                current = next;
            }
            var mid = _encMid.Forward(current, null, null);
            current.Dispose();
            current = mid;
            return _encNormOut.Forward(current, silu: true);
        }
        finally { current.Dispose(); }
    }

    /// <summary>clamp(x, lo, hi) = x - relu(x - hi) + relu(lo - x): exact for values inside the range.</summary>
    private static Tensor Clamp(Tensor x, float lo, float hi)
    {
        var device = x.Device;
        using var above = device.Allocate(x.DType, x.ShapeArray());
        device.Affine(x, above, 1f, -hi);
        device.Activate(above, above, Activation.Relu);
        using var below = device.Allocate(x.DType, x.ShapeArray());
        device.Affine(x, below, -1f, lo);
        device.Activate(below, below, Activation.Relu);
        var y = device.Allocate(x.DType, x.ShapeArray());
        device.LinearCombination(y, [x, above, below], [1f, -1f, 1f]);
        return y;
    }

    /// <summary>
    /// exp(x / 2) for x in [-30, 20], composed from device ops: the softmax of the pair (x/2, 30) is
    /// e^(x/2-30) / (1 + e^(x/2-30)), which equals e^(x/2-30) to a relative 2e-9 because x/2 &lt;= 10;
    /// multiplying by e^30 gives the result.
    /// </summary>
    private static Tensor HalfExp(Tensor logVar)
    {
        const float Reference = 30f;
        var device = logVar.Device;
        int count = (int)logVar.Length;
        using var half = device.Allocate(count, 1);
        device.Affine(logVar, half, 0.5f, 0f);
        using var reference = device.Allocate(count, 1);
        device.Fill(reference, Reference);
        using var pairs = device.Allocate(count, 2);
        device.ConcatChannels(half, reference, pairs);
        device.Softmax(pairs, pairs);
        using var columns = device.Allocate(1, 2, count);
        device.Transpose(pairs.Reshape(1, count, 2), columns);
        var y = device.Allocate(logVar.ShapeArray());
        device.Affine(columns.Reshape(2, count).Slice(0, 1), y, (float)Math.Exp(Reference), 0f);
        return y;
    }
}
