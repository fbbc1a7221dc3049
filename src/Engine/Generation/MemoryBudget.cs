using System.Globalization;
using Engine.Core;

namespace Engine.Generation;

/// <summary>
/// Estimates the peak memory of a request before anything is allocated: the loaded weights, the
/// activations of one batch (every guidance branch) and the host arrays the results go to. A request
/// whose estimate exceeds what is available is refused with both numbers; the batch size is not lowered
/// behind the caller's back (it would change the batch-dependent rounding a sidecar records), but the
/// message says which <c>--batch</c> would fit.
/// </summary>
/// <remarks>
/// Activations are counted as <see cref="LiveMaps"/> maps of the network's widest full-resolution
/// feature map (the output of <c>conv_in</c> for a UNet, of the patch embedding for a transformer):
/// the skip connections, the residual, the normalised input and one convolution or attention output
/// alive at once. It is an estimate by design, low rather than high, so that no request that fits is refused.
/// Available memory is the limit the .NET GC reports (<see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>,
/// which follows container and cgroup limits) less what the process already holds, or a GPU's own memory.
/// </remarks>
public static class MemoryBudget
{
    /// <summary>Full-resolution feature maps counted as alive at once per image and guidance branch.</summary>
    public const int LiveMaps = 8;

    private const double GiB = 1024.0 * 1024 * 1024;

    /// <summary>Bytes of activations one batch of <paramref name="batch"/> latents of <paramref name="height"/> x <paramref name="width"/> needs.</summary>
    public static long ActivationBytes(LoadedDenoiser model, int batch, int branches, int height, int width)
    {
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
        long positions = (height / stride) * Math.Max(1, width / stride);
        return LiveMaps * batch * (long)branches * widest * positions * sizeof(float);
    }

    /// <summary>
    /// Throws <see cref="InsufficientMemoryException"/> saying how much <paramref name="request"/> needs and
    /// how much is available on <paramref name="device"/> (and the host) when the estimate does not fit.
    /// <paramref name="height"/> and <paramref name="width"/> are in latent units.
    /// </summary>
    public static void Check(Device device, LoadedDenoiser model, GenerationRequest request, int count, int channels, int height, int width)
    {
        int batch = request.EffectiveBatchSize;
        int branches = request.GuidanceScale != 1 ? 2 : 1;
        long weights = model.Network.ParameterBytes;
        int scale = model.PixelScale;
        long outputs = (long)count * channels * height * width * sizeof(float)
            + (model.Pipeline is null ? 0 : (long)count * 3 * height * scale * width * scale * sizeof(float));
        long Activations(int b) => ActivationBytes(model, b, branches, height, width);

        var info = GC.GetGCMemoryInfo();
        long hostLimit = info.TotalAvailableMemoryBytes;
        long inUse = Environment.WorkingSet;
        if (device.DedicatedMemoryBytes is long deviceMemory)
        {
            if (weights + Activations(batch) > deviceMemory)
                throw Refusal($"needs {Gib(weights + Activations(batch))} GiB on {device.Name} (weights {Gib(weights)}, activations of a batch of {batch}: {Gib(Activations(batch))}), {Gib(deviceMemory)} GiB available",
                    Fitting(batch, b => weights + Activations(b) <= deviceMemory));
            if (outputs > hostLimit - inUse)
                throw Refusal($"needs {Gib(outputs)} GiB of host memory for the {count} results, {Gib(hostLimit - inUse)} GiB available (limit {Gib(hostLimit)} GiB)", null);
            return;
        }
        // Host tensors: the weights are already part of what the process holds.
        long available = hostLimit - inUse + weights;
        long needed = weights + Activations(batch) + outputs;
        if (needed > available)
            throw Refusal($"needs {Gib(needed)} GiB (weights {Gib(weights)}, activations of a batch of {batch}: {Gib(Activations(batch))}, results {Gib(outputs)}), {Gib(available)} GiB available (limit {Gib(hostLimit)} GiB)",
                Fitting(batch, b => weights + Activations(b) + outputs <= available));
    }

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

    private static string Gib(long bytes) => (bytes / GiB).ToString("0.##", CultureInfo.InvariantCulture);
}
