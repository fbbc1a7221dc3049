namespace Engine.Core;

/// <summary>
/// Counts host/device traffic and fresh allocations so tests can prove that a sampling loop keeps
/// tensors on the device and allocates nothing per step, and the bytes of device buffers live and pooled
/// (with their peaks) so a benchmark can tell weights, activations and pool overhead apart. Thread-safe.
/// </summary>
public sealed class TransferStats
{
    private long _uploads, _downloads, _uploadBytes, _downloadBytes, _allocations;

    /// <summary>Number of host-to-device copies.</summary>
    public long Uploads => Interlocked.Read(ref _uploads);
    /// <summary>Number of device-to-host copies.</summary>
    public long Downloads => Interlocked.Read(ref _downloads);
    /// <summary>Bytes copied host-to-device.</summary>
    public long UploadBytes => Interlocked.Read(ref _uploadBytes);
    /// <summary>Bytes copied device-to-host.</summary>
    public long DownloadBytes => Interlocked.Read(ref _downloadBytes);
    /// <summary>
    /// Buffers created because the pool had none of the requested size, or because the device does not pool buffers of
    /// that size (its own allocator reuses their memory: the CPU devices' large buffers).
    /// </summary>
    public long Allocations => Interlocked.Read(ref _allocations);

    private long _liveBytes, _pooledBytes, _peakLiveBytes, _peakHeldBytes;

    /// <summary>Bytes of device buffers held by live tensors (weights included).</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);
    /// <summary>Bytes of device buffers kept in the pool for reuse.</summary>
    public long PooledBytes => Interlocked.Read(ref _pooledBytes);
    /// <summary>Largest <see cref="LiveBytes"/> seen since the last <see cref="ResetPeaks"/>.</summary>
    public long PeakLiveBytes => Interlocked.Read(ref _peakLiveBytes);
    /// <summary>Largest live plus pooled bytes seen since the last <see cref="ResetPeaks"/>: the device memory the engine held.</summary>
    public long PeakHeldBytes => Interlocked.Read(ref _peakHeldBytes);

    /// <summary>Restarts both peaks at the current live and held bytes.</summary>
    public void ResetPeaks()
    {
        Interlocked.Exchange(ref _peakLiveBytes, LiveBytes);
        Interlocked.Exchange(ref _peakHeldBytes, LiveBytes + PooledBytes);
    }

    /// <summary>A buffer went to a tensor: fresh (<paramref name="fromPool"/> false) or taken from the pool.</summary>
    internal void CountTake(long bytes, bool fromPool)
    {
        if (fromPool) Interlocked.Add(ref _pooledBytes, -bytes);
        long live = Interlocked.Add(ref _liveBytes, bytes);
        Max(ref _peakLiveBytes, live);
        Max(ref _peakHeldBytes, live + PooledBytes);
    }

    /// <summary>A tensor gave its buffer back: to the pool (<paramref name="pooled"/>) or freed.</summary>
    internal void CountGiveBack(long bytes, bool pooled)
    {
        Interlocked.Add(ref _liveBytes, -bytes);
        if (pooled) Interlocked.Add(ref _pooledBytes, bytes);
    }

    /// <summary>A pooled buffer was freed.</summary>
    internal void CountTrim(long bytes) => Interlocked.Add(ref _pooledBytes, -bytes);

    private static void Max(ref long peak, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, value, seen) != seen) { }
    }

    internal void CountUpload(long bytes) { Interlocked.Increment(ref _uploads); Interlocked.Add(ref _uploadBytes, bytes); }
    internal void CountDownload(long bytes) { Interlocked.Increment(ref _downloads); Interlocked.Add(ref _downloadBytes, bytes); }
    internal void CountAllocation() => Interlocked.Increment(ref _allocations);
}
