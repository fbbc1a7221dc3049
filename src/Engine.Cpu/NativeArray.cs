using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// Native, 64-byte aligned storage of <see cref="Length"/> elements with the array surface the CPU kernels use
/// (indexer, <see cref="AsSpan(long, int)"/>, <c>fixed</c>). Outside the managed heap (from <see cref="CpuMemory"/>: its arena when
/// large, else the system allocator), its memory is given back the moment the buffer is dropped
/// (<see cref="Free"/>), with no collection and nothing left to the GC.
/// </summary>
/// <remarks>
/// A tensor that is never disposed leaves its storage to the finalizer, which must not free memory that an op may
/// still be reading through a pointer (an op's last reference to an argument can end before its kernels do). So the
/// finalizer only hands the memory to <see cref="Orphans"/>, which frees it when the device's pool is trimmed,
/// between ops (or at once once the device is disposed).
/// </remarks>
internal sealed unsafe class NativeArray<T> where T : unmanaged
{
    private T* _data;
    private readonly Orphans _orphans;

    /// <summary>Allocates <paramref name="length"/> elements, from the arena when <paramref name="arena"/> is set and it serves the size (<see cref="CpuMemory"/>).</summary>
    public NativeArray(int length, Orphans orphans, bool arena)
    {
        Length = length;
        _orphans = orphans;
        _data = (T*)CpuMemory.Allocate(Bytes, arena);
        orphans.CountAllocated(Bytes);
    }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Bytes of the storage (an empty array still holds one element).</summary>
    private long Bytes => (long)Math.Max(1, Length) * sizeof(T);

    /// <summary>The first element's address.</summary>
    public T* Pointer => _data;

    /// <summary>Element <paramref name="index"/> (bounds-checked, as an array's).</summary>
    public ref T this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)Length) ThrowIndex(index);
            return ref _data[index];
        }
    }

    /// <summary>Element <paramref name="index"/> (bounds-checked, as an array's).</summary>
    public ref T this[long index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((ulong)index >= (ulong)Length) ThrowIndex(index);
            return ref _data[index];
        }
    }

    /// <summary>Elements <paramref name="start"/> to <paramref name="start"/> + <paramref name="length"/> (bounds-checked).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<T> AsSpan(long start, int length)
    {
        if ((ulong)start > (ulong)Length || (uint)length > (ulong)Length - (ulong)start) ThrowRange(start, length);
        return new Span<T>(_data + start, length);
    }

    /// <summary>For <c>fixed (T* p = array)</c>.</summary>
    public ref T GetPinnableReference() => ref *_data;

    /// <summary>Frees the memory now (the pool dropped the buffer); idempotent.</summary>
    public void Free()
    {
        var data = _data;
        if (data == null) return;
        _data = null;
        CpuMemory.Release(data, Bytes);
        _orphans.CountFreed(Bytes);
        GC.SuppressFinalize(this);
    }

    ~NativeArray()
    {
        if (_data != null) _orphans.Add((nint)_data, Bytes);
    }

    private void ThrowIndex(long index) => throw new IndexOutOfRangeException($"index {index} outside a CPU buffer of {Length} elements.");

    private void ThrowRange(long start, int length) => throw new ArgumentOutOfRangeException(nameof(start), $"elements {start}..{start + length} outside a CPU buffer of {Length} elements.");
}

/// <summary>
/// The native memory of CPU buffers whose tensors were never disposed: freed by <see cref="FreeAll"/> (the device
/// calls it when its pool is trimmed, between ops) or at once after <see cref="Close"/>. Also counts the native bytes.
/// </summary>
internal sealed class Orphans
{
    private readonly ConcurrentQueue<(nint Pointer, long Bytes)> _queue = new();
    private long _bytes;
    private volatile bool _closed;

    /// <summary>Native bytes of the device's buffers not yet freed (live, pooled or orphaned).</summary>
    public long Bytes => Interlocked.Read(ref _bytes);

    public void CountAllocated(long bytes) => Interlocked.Add(ref _bytes, bytes);

    public void CountFreed(long bytes) => Interlocked.Add(ref _bytes, -bytes);

    /// <summary>From a finalizer: keeps the memory for the next <see cref="FreeAll"/>, or frees it once closed.</summary>
    public void Add(nint pointer, long bytes)
    {
        _queue.Enqueue((pointer, bytes));
        if (_closed) FreeAll();
    }

    /// <summary>Frees every orphan; call only while no op runs on the device.</summary>
    public unsafe void FreeAll()
    {
        while (_queue.TryDequeue(out var orphan))
        {
            CpuMemory.Release((void*)orphan.Pointer, orphan.Bytes);
            CountFreed(orphan.Bytes);
        }
    }

    /// <summary>The device is disposed: frees the orphans and, from now on, each one as it comes.</summary>
    public void Close()
    {
        _closed = true;
        FreeAll();
    }
}
