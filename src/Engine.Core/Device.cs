namespace Engine.Core;

/// <summary>
/// A compute device: owns memory (with a size-keyed pool so steady-state loops allocate nothing),
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
    private readonly Dictionary<(DType, long), Stack<DeviceBuffer>> _pool = new();
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
        lock (_poolLock)
        {
            if (_pool.TryGetValue((dtype, length), out var stack) && stack.Count > 0) buffer = stack.Pop();
        }
        bool fromPool = buffer is not null;
        if (buffer is null)
        {
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

    private static long BufferBytes(DeviceBuffer buffer) => buffer.Length * buffer.DType.Size();

    internal void Return(DeviceBuffer buffer)
    {
        Transfers.CountGiveBack(BufferBytes(buffer), pooled: !_disposed);
        if (_disposed) { buffer.Dispose(); return; }
        lock (_poolLock)
        {
            var key = (buffer.DType, buffer.Length);
            if (!_pool.TryGetValue(key, out var stack)) _pool[key] = stack = new Stack<DeviceBuffer>();
            stack.Push(buffer);
        }
    }

    /// <summary>Frees every pooled buffer (tensors still alive keep theirs).</summary>
    public void TrimPool()
    {
        lock (_poolLock)
        {
            foreach (var stack in _pool.Values)
                while (stack.Count > 0)
                {
                    var buffer = stack.Pop();
                    Transfers.CountTrim(BufferBytes(buffer));
                    buffer.Dispose();
                }
            _pool.Clear();
        }
    }

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
