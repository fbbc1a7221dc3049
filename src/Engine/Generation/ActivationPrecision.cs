using Engine.Core;

namespace Engine.Generation;

/// <summary>
/// The storage of a request's activations (<see cref="GenerationRequest.Precision"/>): which one a device gets
/// by default, whether it can run it, and setting it on every network of a loaded model (denoiser, text
/// encoders, VAE). Sampler state, timestep embeddings and the tensors between the networks stay float32.
/// </summary>
public static class ActivationPrecision
{
    /// <summary>
    /// The activations of a request on <paramref name="device"/>: <paramref name="requested"/>, or by default
    /// F16 on CUDA and F32 elsewhere. Throws naming <c>--precision</c> when the device computes with float32
    /// activations only (the managed CPU device).
    /// </summary>
    public static DType Resolve(Device device, DType? requested)
    {
        var precision = requested ?? (device.Kind == "cuda" ? DType.F16 : DType.F32);
        if (precision != DType.F32 && !device.SupportsHalfActivations)
            throw new ArgumentException($"precision {precision.StorageName()} (--precision) needs an ILGPU device (cuda, opencl or ilgpu-cpu); {device.Name} computes with f32 activations.");
        return precision;
    }

    /// <summary>Sets <paramref name="activations"/> on every network of <paramref name="model"/>.</summary>
    public static void Apply(LoadedDenoiser model, DType activations)
    {
        model.Network.Activations = activations;
        if (model.Pipeline is not { } pipeline) return;
        pipeline.Vae.Activations = activations;
        if (pipeline.Prompts is { } prompts)
            foreach (var encoder in prompts.Encoders) encoder.Activations = activations;
    }
}
