namespace Engine.Core;

/// <summary>
/// Counts host/device traffic and fresh allocations so tests can prove that a sampling loop keeps
/// tensors on the device and allocates nothing per step. Thread-safe.
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
    /// <summary>Buffers created because the pool had none of the requested size.</summary>
    public long Allocations => Interlocked.Read(ref _allocations);

    internal void CountUpload(long bytes) { Interlocked.Increment(ref _uploads); Interlocked.Add(ref _uploadBytes, bytes); }
    internal void CountDownload(long bytes) { Interlocked.Increment(ref _downloads); Interlocked.Add(ref _downloadBytes, bytes); }
    internal void CountAllocation() => Interlocked.Increment(ref _allocations);
}
