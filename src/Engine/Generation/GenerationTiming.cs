namespace Engine.Generation;

/// <summary>The wall time and device memory of one phase of a request (see <see cref="Generator.Timing"/>).</summary>
/// <param name="Phase"><c>text encoding</c>, <c>denoising</c> or <c>VAE decode</c>.</param>
/// <param name="Elapsed">Wall time of the phase, the device's queued work included.</param>
/// <param name="Steps">Sampler steps in the phase (denoising), else 0.</param>
/// <param name="PeakLiveBytes">Largest bytes of device buffers held by live tensors during the phase (weights included).</param>
/// <param name="PeakHeldBytes">Largest bytes held during the phase, live and pooled for reuse.</param>
public readonly record struct GenerationTiming(string Phase, TimeSpan Elapsed, int Steps, long PeakLiveBytes, long PeakHeldBytes)
{
    /// <summary>Device buffers created in the phase because the pool had none that fit (a steady loop creates none).</summary>
    public long FreshBuffers { get; init; }

    /// <summary>CPU time the process spent in the phase (all threads, user and kernel; zero when not measured).</summary>
    public TimeSpan Cpu { get; init; }
}
