using Engine.Core;
using Engine.Models.Networks;

namespace Engine.Generation;

/// <summary>
/// The ControlNets of one request, checked against the pipeline before any work (as diffusers' check_inputs): an SD
/// or SDXL UNet whose skips, block widths, cross-attention width and added conditioning the ControlNet matches, an
/// embedding stride equal to the VAE factor, images with the net's conditioning_channels, one or one per output, and
/// windows inside [0, 1]. <see cref="ForRows"/> uploads a batch's prepared images once; the sampling loop then reads
/// only device tensors.
/// </summary>
internal sealed class ControlNetRun
{
    private readonly (ControlNetSpec Spec, ControlNetModel Net, float[] Pixels)[] _nets;
    private readonly bool _guessMode;
    private readonly int _height, _width;

    private ControlNetRun((ControlNetSpec, ControlNetModel, float[])[] nets, bool guessMode, int height, int width)
    {
        _nets = nets;
        _guessMode = guessMode;
        _height = height;
        _width = width;
    }

    /// <summary>
    /// Loads and checks the request's ControlNets for outputs of <paramref name="height"/> x <paramref name="width"/>
    /// pixels; null when the request has none.
    /// </summary>
    public static ControlNetRun? Create(LoadedDenoiser model, GenerationRequest request, int height, int width, DType weightStorage)
    {
        if (request.ControlNets.Count == 0)
        {
            if (request.GuessMode) throw new ArgumentException("guess mode (--guess-mode) needs a ControlNet (--controlnet).");
            return null;
        }
        if (model.Pipeline?.Prompts is null || model.Network is not UNet2DConditionModel unet)
            throw new ArgumentException($"ControlNets (--controlnet) run on SD 1.x/2.x and SDXL pipeline folders; '{model.Path}' is {model.Pipeline?.Index.ClassName ?? "a single-model folder"}.");
        var nets = new (ControlNetSpec, ControlNetModel, float[])[request.ControlNets.Count];
        for (int k = 0; k < nets.Length; k++)
        {
            var spec = request.ControlNets[k];
            CheckWindow(spec, k);
            var net = model.ControlNets.Get(spec.Path, weightStorage);
            CheckLayout(net, unet, model, spec.Path);
            var image = spec.Image ?? throw new ArgumentException($"ControlNet '{spec.Path}' has no control image (--control-image).");
            if (image.Channels != net.ConditioningChannels)
                throw new ArgumentException($"{image.Describe(k)} (--control-image) has {image.Channels} channels; ControlNet '{spec.Path}' takes conditioning_channels = {net.ConditioningChannels}.");
            if (image.Count != 1 && image.Count != request.Count)
                throw new ArgumentException($"{image.Describe(k)} (--control-image) holds {image.Count} images for {request.Count} outputs: give one image for all or one per output.");
            if ((long)image.Count * image.Channels * image.Height * image.Width != image.Pixels.LongLength)
                throw new ArgumentException($"{image.Describe(k)} holds {image.Pixels.LongLength} values, not {image.Count} images of [{image.Channels}, {image.Height}, {image.Width}].");
            var pixels = image.Prepared(height, width, model.Pipeline.Vae.LatentChannels);
            if (pixels.LongLength != (long)image.Count * image.Channels * height * width)
                throw new ArgumentException($"{image.Describe(k)} is [{image.Channels}, {image.Height}, {image.Width}]; a {image.Channels}-channel latent-sized control image is not resized, and does not fit {height}x{width} outputs.");
            nets[k] = (spec, net, pixels);
        }
        return new ControlNetRun(nets, request.GuessMode, height, width);
    }

    private static void CheckWindow(ControlNetSpec spec, int k)
    {
        string which = $"ControlNet {k + 1} ('{spec.Path}')";
        if (!double.IsFinite(spec.Scale)) throw new ArgumentException($"{which}: conditioning scale {spec.Scale} (--controlnet DIR:SCALE) must be finite.");
        if (!(spec.Start >= 0 && spec.Start <= 1)) throw new ArgumentException($"{which}: control start {spec.Start} (--control-start) must be in [0, 1].");
        if (!(spec.End >= 0 && spec.End <= 1)) throw new ArgumentException($"{which}: control end {spec.End} (--control-end) must be in [0, 1].");
        if (spec.Start >= spec.End) throw new ArgumentException($"{which}: control start {spec.Start} (--control-start) must be below control end {spec.End} (--control-end).");
    }

    private static void CheckLayout(ControlNetModel net, UNet2DConditionModel unet, LoadedDenoiser model, string path)
    {
        string Mismatch(string what, string theirs, string ours) =>
            $"ControlNet '{path}' (--controlnet) does not fit the UNet of '{model.Path}': its {what} is {theirs}, the UNet's {ours}.";
        static string List(IEnumerable<int> v) => $"[{string.Join(", ", v)}]";
        if (!net.BlockChannels.SequenceEqual(unet.BlockChannels)) throw new ArgumentException(Mismatch("block_out_channels", List(net.BlockChannels), List(unet.BlockChannels)));
        if (!net.ResidualChannels.SequenceEqual(unet.SkipChannels))
            throw new ArgumentException(Mismatch("block layout (residual channels)", List(net.ResidualChannels), List(unet.SkipChannels)));
        if (net.CrossAttentionDim != unet.CrossAttentionDim) throw new ArgumentException(Mismatch("cross_attention_dim", net.CrossAttentionDim.ToString(), unet.CrossAttentionDim.ToString()));
        if (net.InChannels != unet.InChannels) throw new ArgumentException(Mismatch("in_channels", net.InChannels.ToString(), unet.InChannels.ToString()));
        string Added(UNetAdditionEmbedding? a) => a is null ? "none" : $"text_time of width {a.InputWidth}";
        if (Added(net.AdditionEmbedding) != Added(unet.AdditionEmbedding)) throw new ArgumentException(Mismatch("added conditioning", Added(net.AdditionEmbedding), Added(unet.AdditionEmbedding)));
        int factor = model.Pipeline!.LatentScale;
        if (net.EmbeddingDownFactor != factor)
            throw new ArgumentException($"ControlNet '{path}' (--controlnet) embeds its image down by {net.EmbeddingDownFactor}; the VAE of '{model.Path}' by {factor}.");
    }

    /// <summary>The device-side state of images [<paramref name="start"/>, start + <paramref name="n"/>) for a run of <paramref name="calls"/> model calls.</summary>
    public ControlNetBatch ForRows(Device device, int start, int n, int calls)
    {
        var images = new Tensor[_nets.Length];
        try
        {
            for (int k = 0; k < _nets.Length; k++)
            {
                var (spec, net, pixels) = _nets[k];
                int c = net.ConditioningChannels, length = c * _height * _width;
                bool shared = spec.Image.Count == 1;
                // Rows for every guidance block (cond, uncond, perturbed); guess mode uses the conditional block only.
                int blocks = _guessMode ? 1 : 3;
                var rows = new float[(long)blocks * n * length];
                for (int r = 0; r < blocks * n; r++)
                    pixels.AsSpan((shared ? 0 : start + r % n) * length, length).CopyTo(rows.AsSpan(r * length));
                images[k] = device.Upload(rows, blocks * n, c, _height, _width);
            }
        }
        catch
        {
            foreach (var t in images) t?.Dispose();
            throw;
        }
        return new ControlNetBatch(_nets.Select((e, k) => (e.Spec, e.Net, images[k])).ToArray(), _guessMode, n, calls);
    }
}
