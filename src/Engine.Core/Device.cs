namespace Engine.Core;

/// <summary>
/// A compute device: owns memory (with a pool of free buffers, <see cref="BufferPool"/>, so steady-state loops allocate nothing),
/// moves data between host and device (counted in <see cref="Transfers"/>), and implements the op
/// surface, one family per file (<c>Device.Gemm.cs</c>, <c>Device.Conv.cs</c>, <c>Device.Norm.cs</c>,
/// <c>Device.Attention.cs</c>, <c>Device.Pointwise.cs</c>, <c>Device.Layout.cs</c>, <c>Device.Random.cs</c>,
/// <c>Device.Convert.cs</c>; the shared checks in <c>Device.Checks.cs</c>). Public op methods validate
/// their arguments (F32, same device, shapes) and then call the protected <c>*Core</c> methods that each
/// device implements, so both devices share one contract. Ops compute in float32 and write a
/// caller-provided output, so callers control allocation (and reuse pooled tensors).
/// Not thread-safe for concurrent ops on one instance unless a derived device says otherwise;
/// allocation and the pool are thread-safe.
/// </summary>
public abstract partial class Device : IDisposable
{
    private readonly BufferPool _pool = new();
    private readonly object _poolLock = new();
    private bool _disposed;

    /// <summary>Human-readable device name, e.g. "cpu (2 threads, AVX-512)" or "cuda: NVIDIA H100".</summary>
    public abstract string Name { get; }

    /// <summary>The short kind used in options: cpu, cuda, opencl or ilgpu-cpu.</summary>
    public abstract string Kind { get; }

    /// <summary>Host/device traffic and allocation counters.</summary>
    public TransferStats Transfers { get; } = new();

    /// <summary>Creates device storage for <paramref name="length"/> elements (contents undefined).</summary>
    protected abstract DeviceBuffer CreateBuffer(DType dtype, long length);

    /// <summary>Copies raw little-endian storage bytes of <paramref name="dst"/>'s dtype into it.</summary>
    protected abstract void CopyFromHostCore(ReadOnlySpan<byte> bytes, Tensor dst);

    /// <summary>Copies <paramref name="src"/> to the host, converting to float32.</summary>
    protected abstract void CopyToHostCore(Tensor src, Span<float> dst);

    /// <summary>Waits until all queued work on the device has finished.</summary>
    public virtual void Synchronize() { }

    /// <summary>
    /// Bytes of memory the device holds apart from the host's (a GPU's), or null when tensors live in host
    /// memory (the CPU backends), whose limit <see cref="GC.GetGCMemoryInfo()"/> reports.
    /// </summary>
    public virtual long? DedicatedMemoryBytes => null;

    /// <summary>Allocates an uninitialised float32 tensor from the pool.</summary>
    public Tensor Allocate(params int[] shape) => Allocate(DType.F32, shape);

    /// <summary>Allocates an uninitialised tensor from the pool.</summary>
    public Tensor Allocate(DType dtype, params int[] shape)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        long length = Tensor.ShapeLength(shape);
        DeviceBuffer? buffer = null;
        var dropped = new List<DeviceBuffer>();
        if (PoolsBuffer(dtype, length))
            lock (_poolLock) buffer = _pool.Take(dtype, length, dropped);
        bool fromPool = buffer is not null;
        if (buffer is null)
        {
            // The buffers the miss released go first, so the new one can take their memory.
            Free(dropped);
            buffer = CreateBuffer(dtype, Math.Max(1, length));
            Transfers.CountAllocation();
        }
        Transfers.CountTake(BufferBytes(buffer), fromPool);
        return new Tensor(this, buffer, 0, (int[])shape.Clone(), ownsBuffer: true);
    }

    /// <summary>Allocates a float32 tensor filled with zeros.</summary>
    public Tensor Zeros(params int[] shape)
    {
        var t = Allocate(shape);
        Fill(t, 0f);
        return t;
    }

    private static long BufferBytes(DeviceBuffer buffer) => BufferPool.BytesOf(buffer);

    internal void Return(DeviceBuffer buffer)
    {
        bool pooled = !_disposed && PoolsBuffer(buffer.DType, buffer.Length);
        Transfers.CountGiveBack(BufferBytes(buffer), pooled);
        if (!pooled) { buffer.Dispose(); return; }
        var dropped = new List<DeviceBuffer>(0);
        lock (_poolLock) _pool.Return(buffer, dropped);
        if (dropped.Count > 0) Free(dropped);
    }

    /// <summary>
    /// Whether free buffers of this size go to the pool (<see cref="BufferPool"/>) for reuse; true by default. A device
    /// whose own allocator already reuses freed memory at no cost (the CPU devices' memory arena for large buffers)
    /// returns false there: such a buffer is created for each request (<see cref="TransferStats.Allocations"/> counts it)
    /// and freed when its tensor is disposed.
    /// </summary>
    protected virtual bool PoolsBuffer(DType dtype, long length) => true;

    /// <summary>Frees every pooled buffer (tensors still alive keep theirs). Call it between ops, not during one.</summary>
    public void TrimPool()
    {
        var dropped = new List<DeviceBuffer>();
        lock (_poolLock) _pool.Clear(dropped);
        Free(dropped);
        OnPoolTrimmed();
    }

    /// <summary>
    /// Frees pooled buffers, least recently returned first, until at least <paramref name="bytes"/> are freed or the pool
    /// is empty; returns the bytes freed. Safe while ops run (only free buffers go): a device's kernels call it to make
    /// room for scratch memory they are about to map, so idle pool memory is given back first.
    /// </summary>
    public long ReleasePooled(long bytes)
    {
        var dropped = new List<DeviceBuffer>();
        long released;
        lock (_poolLock) released = _pool.Release(bytes, dropped);
        Free(dropped);
        return released;
    }

    /// <summary>
    /// Called by <see cref="TrimPool"/> after the pool was emptied, between ops: a device can free here what must
    /// not be freed while an op may run (storage of tensors that were never disposed).
    /// </summary>
    protected virtual void OnPoolTrimmed() { }

    /// <summary>
    /// Most bytes of free buffers the pool keeps (the least recently returned go first beyond it); null (the
    /// default) for no limit beyond the pool's own rule (see <see cref="BufferPool"/>).
    /// </summary>
    public long? PoolLimitBytes
    {
        get { lock (_poolLock) return _pool.LimitBytes; }
        set
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), $"pool limit {value} bytes must be >= 0.");
            var dropped = new List<DeviceBuffer>();
            lock (_poolLock)
            {
                _pool.LimitBytes = value;
                _pool.ApplyLimit(dropped);
            }
            Free(dropped);
        }
    }

    /// <summary>The free buffers the pool holds, by dtype and length (largest first), for reports.</summary>
    public IReadOnlyList<(DType DType, long Length, int Count)> PoolContents()
    {
        lock (_poolLock) return _pool.Contents();
    }

    /// <summary>Frees buffers the pool let go and tells the device how many bytes that was.</summary>
    private void Free(List<DeviceBuffer> dropped)
    {
        if (dropped.Count == 0) return;
        long bytes = 0;
        foreach (var buffer in dropped)
        {
            bytes += BufferBytes(buffer);
            Transfers.CountTrim(BufferBytes(buffer));
            buffer.Dispose();
        }
        OnBuffersFreed(bytes);
    }

    /// <summary>
    /// Called after the pool freed <paramref name="bytes"/> of buffers (dropped on a miss, beyond the limit, or
    /// trimmed), before any buffer that replaces them is created. A device whose buffers go back to the system
    /// only later (managed arrays) can reclaim them here.
    /// </summary>
    protected virtual void OnBuffersFreed(long bytes) { }

    /// <summary>Copies host floats into a new float32 tensor of the given shape.</summary>
    public Tensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        if (Tensor.ShapeLength(shape) != data.Length)
            throw new ArgumentException($"Upload: {data.Length} values do not fill shape {Tensor.ShapeString(shape)}.");
        var t = Allocate(DType.F32, shape);
        CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data), t);
        return t;
    }

    /// <summary>Copies raw storage bytes (little-endian, <paramref name="dtype"/>) into a new tensor.</summary>
    public Tensor UploadRaw(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape)
    {
        if (Tensor.ShapeLength(shape) * dtype.Size() != bytes.Length)
            throw new ArgumentException($"UploadRaw: {bytes.Length} bytes do not fill {dtype} shape {Tensor.ShapeString(shape)}.");
        var t = Allocate(dtype, shape);
        CopyFromHost(bytes, t);
        return t;
    }

    /// <summary>Overwrites <paramref name="dst"/> with raw storage bytes of its dtype.</summary>
    public void CopyFromHost(ReadOnlySpan<byte> bytes, Tensor dst)
    {
        CheckDevice(dst, nameof(dst));
        if (dst.Length * dst.DType.Size() != bytes.Length)
            throw new ArgumentException($"CopyFromHost: {bytes.Length} bytes for {dst}.");
        Transfers.CountUpload(bytes.Length);
        CopyFromHostCore(bytes, dst);
    }

    /// <summary>Copies a tensor to a new host array as float32 (counted as a download).</summary>
    public float[] Download(Tensor src)
    {
        var result = new float[src.Length];
        Download(src, result);
        return result;
    }

    /// <summary>Copies a tensor into <paramref name="dst"/> as float32 (counted as a download).</summary>
    public void Download(Tensor src, Span<float> dst)
    {
        CheckDevice(src, nameof(src));
        if (dst.Length != src.Length) throw new ArgumentException($"Download: destination holds {dst.Length} values, {src} has {src.Length}.");
        Transfers.CountDownload(src.Length * src.DType.Size());
        CopyToHostCore(src, dst);
    }

    /// <summary>Throws unless <paramref name="t"/> lives on this device.</summary>
    protected void CheckDevice(Tensor t, string name)
    {
        if (!ReferenceEquals(t.Device, this))
            throw new ArgumentException($"Tensor '{name}' lives on {t.Device.Name}, not on {Name}.");
    }

    /// <summary>Releases pooled buffers and device resources.</summary>
    public virtual void Dispose()
    {
        if (_disposed) return;
        TrimPool();
        _disposed = true;
        GC.SuppressFinalize(this);
    }
}
