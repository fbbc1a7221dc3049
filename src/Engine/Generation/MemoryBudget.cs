using Engine.Core;
using Engine.Generation.Pipelines;

namespace Engine.Generation;

/// <summary>
/// Estimates the peak memory of a request before anything is allocated (<see cref="MemoryEstimate"/>): the weights of
/// every loaded component, the activations of the largest phase (text encoding, one batch of the denoiser with every
/// guidance branch, the VAE decode of one batch, whole or in tiles) with the pool's slack, and what is held across
/// phases. A request whose estimate exceeds what is available is refused with both numbers; the batch size is not
/// lowered behind the caller's back (it would change the batch-dependent rounding a sidecar records), but the
/// message says which <c>--batch</c> would fit.
/// </summary>
/// <remarks>
/// Each phase counts maps of its widest full-resolution activation, as many as its measured peak holds: the
/// denoiser <see cref="LiveMaps"/> of the output of <c>conv_in</c> (a UNet) or of the patch embedding (a
/// transformer), plus 1.5 times its feed-forward widening at that resolution (the projection and its activated
/// half); the VAE decoder <see cref="VaeMaps"/> maps of its last up block's input at full resolution (input, normalised
/// input, output and shortcut of its first resnet, and the pool's larger buffers serving them); a text encoder the
/// hidden states of both guidance sides, <see cref="LiveMaps"/> for the layer running, its MLP and its attention scores. Weights stored in 16 bits add the float32 copy of the largest one, widened per call. Calibrated
/// on the full-size SD 1.5 measurements and checked against the tiny pipelines' measured peaks (MemoryBudgetTests).
/// Available memory is the limit the .NET GC reports (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>,
/// which follows container and cgroup limits) less what the process already holds, or a GPU's own memory.
/// </remarks>
public static class MemoryBudget
{
    /// <summary>Full-resolution maps counted alive at once per image and guidance branch, besides a transformer block's feed-forward.</summary>
    public const int LiveMaps = 10;

    /// <summary>Full-resolution maps of the last up block's input counted alive at once in a VAE decode.</summary>
    public const int VaeMaps = 4;

    /// <summary>Bytes of denoiser activations one batch of <paramref name="batch"/> latents of <paramref name="height"/> x <paramref name="width"/> needs.</summary>
    public static long ActivationBytes(LoadedDenoiser model, int batch, int branches, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(model);
        var network = model.Network;
        long widest = network.InChannels;
        long stride = 1;
        // The first 4-D weight reading the sample's channels is conv_in (stride 1) or the patch embedding (stride = kernel).
        foreach (var p in network.Parameters)
            if (p.Shape is [var outChannels, var inChannels, var kh, _] && inChannels == network.InChannels && p.Key.EndsWith(".weight", StringComparison.Ordinal))
            {
                widest = outChannels;
                stride = p.Key.Contains("pos_embed", StringComparison.Ordinal) ? Math.Max(1, kh) : 1;
                break;
            }
        // The widest feed-forward projection reading maps of that width (a transformer block at full resolution).
        long feedForward = network.Parameters
            .Where(p => p.Shape is [_, var inner] && inner == widest && p.Key.Contains("ff.net.0.proj.weight", StringComparison.Ordinal))
            .Select(p => (long)p.Shape[0]).DefaultIfEmpty(0).Max();
        long positions = (height / stride) * Math.Max(1, width / stride);
        long map = (long)batch * branches * widest * positions * sizeof(float);
        return LiveMaps * map + feedForward * 3 / 2 * map / widest + WidenedWeight(network.Parameters);
    }

    /// <summary>Bytes of the VAE decode of <paramref name="batch"/> latents of <paramref name="height"/> x <paramref name="width"/> (whole or in tiles as <paramref name="tiling"/> says).</summary>
    public static long VaeDecodeBytes(LatentPipeline pipeline, int batch, int height, int width, VaeTiling tiling)
    {
        ArgumentNullException.ThrowIfNull(pipeline);
        var vae = pipeline.Vae;
        int f = pipeline.LatentScale;
        long pixelsHigh = (long)height * f, pixelsWide = (long)width * f;
        var channels = vae.Config.IntList("block_out_channels", [64]);
        long lastInput = channels.Length > 1 ? channels[1] : channels[0];
        long image = (long)batch * vae.OutChannels * pixelsHigh * pixelsWide * sizeof(float);
        if (pipeline.Tiles(tiling, (int)pixelsHigh, (int)pixelsWide))
        {
            // One tile at a time, then the decoded tiles of the image and the blended result.
            long tile = TiledVae.SampleTile(vae);
            return VaeMaps * batch * lastInput * tile * tile * sizeof(float) + 2 * image + WidenedWeight(vae.Parameters);
        }
        return VaeMaps * batch * lastInput * pixelsHigh * pixelsWide * sizeof(float) + image + WidenedWeight(vae.Parameters);
    }

    /// <summary>Bytes of the text encoders over <paramref name="rows"/> prompts (one side of the guidance at a time).</summary>
    public static long TextEncodingBytes(PromptEncoder prompts, int rows)
    {
        ArgumentNullException.ThrowIfNull(prompts);
        // Every encoder's output is kept until the joint embeddings of both sides are built.
        long total = 2L * rows * prompts.Encoders.Max(e => e.MaxPositions) * prompts.Width * sizeof(float);
        foreach (var encoder in prompts.Encoders)
        {
            // Per token: the hidden states of both guidance sides and the layer running, its MLP, its attention scores.
            long perToken = encoder.HiddenSize * (2L * (encoder.LayerCount + 1) + LiveMaps)
                + 2L * encoder.Config.Int("intermediate_size", 4 * encoder.HiddenSize)
                + (long)encoder.Config.Int("num_attention_heads", 1) * encoder.MaxPositions;
            total += rows * encoder.MaxPositions * perToken * sizeof(float) + WidenedWeight(encoder.Parameters);
        }
        return total;
    }

    /// <summary>The parts of <paramref name="request"/>'s peak for <paramref name="count"/> samples of channels x height x width latents at batch <paramref name="batch"/>.</summary>
    public static MemoryEstimate Estimate(LoadedDenoiser model, GenerationRequest request, int count, int channels, int height, int width, int batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(request);
        int branches = request.GuidanceScale != 1 ? 2 : 1;
        var pipeline = model.Pipeline;
        long weights = model.Network.ParameterBytes;
        long text = 0, decode = 0, held = (long)count * channels * height * width * sizeof(float);
        if (pipeline is not null)
        {
            weights += pipeline.Vae.ParameterBytes;
            decode = VaeDecodeBytes(pipeline, batch, height, width, request.VaeTiling);
            long pixels = (long)count * 3 * height * pipeline.LatentScale * width * pipeline.LatentScale;
            held += pixels * sizeof(float);
            if (pipeline.Prompts is { } prompts)
            {
                weights += prompts.Encoders.Sum(e => e.ParameterBytes);
                text = TextEncodingBytes(prompts, count);
                // The embeddings of both sides stay on the device through the denoising.
                held += (long)branches * count * prompts.Encoders.Max(e => e.MaxPositions) * prompts.Width * sizeof(float);
            }
        }
        return new MemoryEstimate(weights, text, ActivationBytes(model, batch, branches, height, width), decode, held, batch);
    }

    /// <summary>
    /// Throws <see cref="InsufficientMemoryException"/> saying how much <paramref name="request"/> needs and
    /// how much is available on <paramref name="device"/> (and the host) when the estimate does not fit.
    /// <paramref name="height"/> and <paramref name="width"/> are in latent units.
    /// </summary>
    public static void Check(Device device, LoadedDenoiser model, GenerationRequest request, int count, int channels, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(device);
        int batch = request.EffectiveBatchSize;
        MemoryEstimate At(int b) => Estimate(model, request, count, channels, height, width, b);
        var estimate = At(batch);
        long weights = estimate.Weights;

        var info = GC.GetGCMemoryInfo();
        long hostLimit = info.TotalAvailableMemoryBytes;
        long inUse = Environment.WorkingSet;
        if (device.DedicatedMemoryBytes is long deviceMemory)
        {
            if (weights + estimate.Activations > deviceMemory)
                throw Refusal($"needs {Gib(weights + estimate.Activations)} GiB on {device.Name} (weights {Gib(weights)}, activations of a batch of {batch}: {Gib(estimate.Activations)}), {Gib(deviceMemory)} GiB available; activations by phase: {estimate.Phases}",
                    Fitting(batch, b => weights + At(b).Activations <= deviceMemory));
            if (estimate.Held > hostLimit - inUse)
                throw Refusal($"needs {Gib(estimate.Held)} GiB of host memory for the {count} results, {Gib(hostLimit - inUse)} GiB available (limit {Gib(hostLimit)} GiB)", null);
            return;
        }
        // Host tensors: the weights are already part of what the process holds.
        long available = hostLimit - inUse + weights;
        if (estimate.Peak > available)
            throw Refusal($"needs {Gib(estimate.Peak)} GiB (weights {Gib(weights)}, activations of a batch of {batch}: {Gib(estimate.Activations)}, results {Gib(estimate.Held)}), {Gib(available)} GiB available (limit {Gib(hostLimit)} GiB); activations by phase: {estimate.Phases}",
                Fitting(batch, b => At(b).Peak <= available));
    }

    // The float32 copy of the largest 16-bit weight, widened per call (lookup tables are read row by row, not widened).
    private static long WidenedWeight(IEnumerable<Engine.Models.Binding.Parameter> parameters) => parameters
        .Where(p => p.Value is { } v && v.DType != DType.F32 && !p.Key.Contains("embedding", StringComparison.Ordinal))
        .Select(p => p.Value!.Length * sizeof(float)).DefaultIfEmpty(0).Max();

    private static int? Fitting(int batch, Func<int, bool> fits)
    {
        for (int b = batch - 1; b >= 1; b--)
            if (fits(b)) return b;
        return null;
    }

    private static InsufficientMemoryException Refusal(string what, int? fittingBatch) =>
        new($"out of memory before starting: the request {what}; " + (fittingBatch is int b
            ? $"--batch {b} fits."
            : "lower the image size or the count, or use a device with more memory."));

    private static string Gib(long bytes) => MemoryEstimate.Gib(bytes);
}
