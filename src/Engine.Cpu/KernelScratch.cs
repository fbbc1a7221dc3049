using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// Scratch memory of the CPU kernels, shared by every thread and op of the process: an op rents a block for as long
/// as it runs (<see cref="Rent"/>, returned by disposing the <see cref="ScratchLease"/>) and the next op, on any
/// thread, reuses it. Kernels used to keep their scratch per thread at its largest size (the Winograd filter
/// transform of a 1280-channel convolution, the direct convolution's packed weights of 2560 -> 1280: 64 and 118 MiB
/// on the calling thread alone), which stayed resident beside the activations for the rest of the process.
/// </summary>
/// <remarks>
/// Where the process has a memory arena (<see cref="CpuMemory"/>; Linux), a rent is an arena block (blocks are at least
/// <see cref="Granule"/>, which the arena serves) and its return frees it there at once: the arena reuses freed memory
/// for requests of any size, so nothing is cached here and none of what follows applies. Otherwise (other systems, a
/// full arena):
/// free blocks are kept so repeated ops reuse resident pages (a fresh block faults its pages in on first touch),
/// and they give way to the activations: when the CPU device creates a buffer because its pool had none (a miss),
/// it first drops free scratch worth the buffer that no op has used for <see cref="IdleOps"/> ops
/// (<see cref="ReleaseIdle"/>); when a rent misses here, the registered
/// reclaimer (the devices' pools) drops free buffers worth the block before it is mapped (after the free blocks
/// here smaller than the request, which cannot serve it). Memory thus moves between idle scratch and idle pool
/// buffers instead of both growing to their own peaks. A rent takes the smallest free block that holds it, at most
/// twice its size. Thread-safe.
/// </remarks>
internal static unsafe class KernelScratch
{
    /// <summary>
    /// Ops (rents made while no block is in use: the first rent of each op that rents any) a free block must stay unused
    /// before a device's pool miss may free it. Ops in one stage of a network reuse the same large blocks every few ops
    /// (the 1280-2560-channel convolutions of a UNet's low-resolution blocks, the GEMM panels of each transformer block); freeing them
    /// at each miss in between would map them again, with their page faults, at the next such op. A block unused for
    /// longer belongs to a stage that is over.
    /// </summary>
    public const int IdleOps = 32;

    /// <summary>
    /// Rents from this size on take idle pool memory when they map a block (<see cref="SetReclaimer"/>): the large packed
    /// weights of low-resolution convolutions, where the pool holds the idle buffers of the high-resolution stages.
    /// Smaller rents map their own: taking pool buffers for them would make the next activation miss.
    /// </summary>
    public const long ReclaimFromBytes = 32L << 20;

    /// <summary>Block sizes are rounded up to this many bytes, so near sizes share blocks.</summary>
    public const long Granule = 64 * 1024;

    /// <summary>Whether rents the arena serves go there (the default); tests of the free-block cache turn it off.</summary>
    internal static bool UseArena { get; set; } = true;

    private static readonly object Gate = new();
    // Free blocks sorted by size, ties newest last; Stamp orders them by return (least recently returned released
    // first), Op is the op clock at the return.
    private static readonly List<(nint Pointer, long Bytes, long Stamp, long Op, int Thread)> Free = new();
    private static long _inUse, _held, _peakInUse, _peakHeld, _allocations, _reuses, _arenaRents, _stamp, _opClock, _mappedBytes;
    private static Func<long, long>? _reclaim;

    /// <summary>
    /// Called on a miss with the bytes about to be mapped: frees that much idle memory elsewhere (the CPU devices'
    /// pools) and returns the bytes it freed. Set by <see cref="CpuDevice"/>.
    /// </summary>
    public static void SetReclaimer(Func<long, long>? reclaim)
    {
        lock (Gate) _reclaim = reclaim;
    }

    /// <summary>A block of at least <paramref name="floats"/> floats, 64-byte aligned, contents undefined; dispose the lease to return it.</summary>
    public static ScratchLease Rent(long floats)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(floats);
        long bytes = Math.Max(Granule, (floats * sizeof(float) + Granule - 1) / Granule * Granule);
        Func<long, long>? reclaim;
        var dropped = new List<(nint Pointer, long Bytes, long Stamp, long Op, int Thread)>();
        long released = 0;
        lock (Gate)
        {
            if (_inUse == 0) _opClock++;
            // The arena reuses freed memory for any size: its blocks are neither kept here nor counted as mapped.
            if (UseArena && CpuMemory.TryArena(bytes) is var fromArena && fromArena != null)
            {
                _held += bytes;
                _peakHeld = Math.Max(_peakHeld, _held);
                _arenaRents++;
                CountInUse(bytes);
                return new ScratchLease((float*)fromArena, bytes);
            }
            int i = FirstAtLeast(bytes);
            if (i < Free.Count && Free[i].Bytes <= 2 * bytes)
            {
                // The newest of the smallest fitting size, the most likely to be in cache; but first the smallest fitting
                // block this thread returned: a worker renting per block of its loop (Winograd's V and M) then gets back
                // the block in its own core's cache rather than the one the other core just wrote.
                int thread = Environment.CurrentManagedThreadId, own = -1;
                for (int j = i; j < Free.Count && Free[j].Bytes <= 2 * bytes && own < 0; j++)
                    if (Free[j].Thread == thread) own = LastOwn(j, thread);
                i = own >= 0 ? own : FirstAtLeast(Free[i].Bytes + 1) - 1;
                var block = Free[i];
                Free.RemoveAt(i);
                _reuses++;
                CountInUse(block.Bytes);
                return new ScratchLease((float*)block.Pointer, block.Bytes);
            }
            reclaim = _reclaim;
            // A miss: idle free blocks smaller than the request, which cannot serve it, go first (largest first, until
            // they are worth the request), as the device pool's miss rule drops its buffers; larger ones stay for larger
            // rents, and blocks used in the last IdleOps ops stay for the next op of their kind (a transformer block
            // cycles through a few sizes: dropping them at each larger rent would map them again every cycle).
            for (int j = FirstAtLeast(bytes) - 1; j >= 0 && released < bytes; j--)
            {
                if (_opClock - Free[j].Op <= IdleOps) continue;
                var block = Free[j];
                Free.RemoveAt(j);
                _held -= block.Bytes;
                released += block.Bytes;
                dropped.Add(block);
            }
        }
        foreach (var block in dropped) CpuMemory.Release((void*)block.Pointer, block.Bytes);
        // Then the pools' idle buffers, so the new block takes their memory instead of adding to it.
        if (released < bytes && bytes >= ReclaimFromBytes && reclaim is not null) reclaim(bytes - released);
        var p = CpuMemory.Allocate(bytes, useArena: false);
        lock (Gate)
        {
            _allocations++;
            _mappedBytes += bytes;
            _held += bytes;
            _peakHeld = Math.Max(_peakHeld, _held);
            CountInUse(bytes);
        }
        return new ScratchLease((float*)p, bytes);
    }

    /// <summary>
    /// Frees free blocks unused for more than <paramref name="idleOps"/> ops, least recently returned first, until at
    /// least <paramref name="bytes"/> are freed or none is left; returns the bytes freed. A CPU device calls it with
    /// <see cref="IdleOps"/> before it creates a buffer on a pool miss.
    /// </summary>
    public static long ReleaseIdle(long bytes, int idleOps = IdleOps)
    {
        var freed = new List<(nint Pointer, long Bytes, long Stamp, long Op, int Thread)>();
        long released = 0;
        lock (Gate)
        {
            while (released < bytes)
            {
                int oldest = -1;
                for (int i = 0; i < Free.Count; i++)
                    if (_opClock - Free[i].Op > idleOps && (oldest < 0 || Free[i].Stamp < Free[oldest].Stamp)) oldest = i;
                if (oldest < 0) break;
                var block = Free[oldest];
                Free.RemoveAt(oldest);
                _held -= block.Bytes;
                released += block.Bytes;
                freed.Add(block);
            }
        }
        foreach (var block in freed) CpuMemory.Release((void*)block.Pointer, block.Bytes);
        return released;
    }

    /// <summary>Frees every free block (blocks in use stay); returns the bytes freed.</summary>
    public static long Trim() => ReleaseIdle(long.MaxValue, -1);

    /// <summary>The counters since the last <see cref="ResetPeaks"/>.</summary>
    public static ScratchStats Stats
    {
        get
        {
            lock (Gate) return new ScratchStats(_inUse, _held, _peakInUse, _peakHeld, _allocations, _reuses, Free.Count, PerThreadScratch.Bytes, _mappedBytes, _arenaRents);
        }
    }

    /// <summary>Restarts the peaks at the current bytes.</summary>
    public static void ResetPeaks()
    {
        lock (Gate)
        {
            _peakInUse = _inUse;
            _peakHeld = _held;
        }
    }

    internal static void Return(float* pointer, long bytes)
    {
        lock (Gate)
        {
            _inUse -= bytes;
            if (CpuMemory.InArena(pointer))
            {
                _held -= bytes;
                CpuMemory.Release(pointer, bytes);
                return;
            }
            Free.Insert(FirstAtLeast(bytes + 1), ((nint)pointer, bytes, ++_stamp, _opClock, Environment.CurrentManagedThreadId));
        }
    }

    /// <summary>The newest block of <paramref name="thread"/> among those of the size of block <paramref name="j"/> (which is one).</summary>
    private static int LastOwn(int j, int thread)
    {
        int last = j;
        for (int k = j + 1; k < Free.Count && Free[k].Bytes == Free[j].Bytes; k++)
            if (Free[k].Thread == thread) last = k;
        return last;
    }

    private static void CountInUse(long bytes)
    {
        _inUse += bytes;
        _peakInUse = Math.Max(_peakInUse, _inUse);
    }

    private static int FirstAtLeast(long bytes)
    {
        int lo = 0, hi = Free.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Free[mid].Bytes < bytes) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}

/// <summary>A block rented from <see cref="KernelScratch"/>; <see cref="Dispose"/> returns it (once).</summary>
internal unsafe struct ScratchLease : IDisposable
{
    private float* _pointer;

    internal ScratchLease(float* pointer, long bytes)
    {
        _pointer = pointer;
        Bytes = bytes;
    }

    /// <summary>The block's first float (64-byte aligned).</summary>
    public readonly float* Pointer => _pointer;

    /// <summary>Bytes of the block (at least the rented floats, rounded up to <see cref="KernelScratch.Granule"/>).</summary>
    public long Bytes { get; }

    /// <summary>Returns the block for reuse.</summary>
    public void Dispose()
    {
        var p = _pointer;
        if (p == null) return;
        _pointer = null;
        KernelScratch.Return(p, Bytes);
    }
}

/// <summary>Kernel scratch counters (bytes): shared blocks in use and held (in use plus free), their peaks, and the per-thread buffers.</summary>
/// <param name="InUseBytes">Shared blocks rented now.</param>
/// <param name="HeldBytes">Shared blocks held now: rented, or free and kept here (arena blocks are held only while rented).</param>
/// <param name="PeakInUseBytes">Most bytes rented at once since the last reset.</param>
/// <param name="PeakHeldBytes">Most bytes mapped at once since the last reset.</param>
/// <param name="Allocations">Blocks mapped from the system allocator (rents that the arena did not serve and no free block fitted).</param>
/// <param name="MappedBytes">Bytes of all blocks mapped from the system allocator: each page of them faulted in once when first written.</param>
/// <param name="Reuses">Rents served by a free block.</param>
/// <param name="ArenaRents">Rents served by the arena (<see cref="CpuMemory"/>).</param>
/// <param name="FreeBlocks">Free blocks held now.</param>
/// <param name="PerThreadBytes">Bytes of the small per-thread buffers kernels still keep (<see cref="AlignedBuffer"/> and GEMM panels).</param>
public readonly record struct ScratchStats(long InUseBytes, long HeldBytes, long PeakInUseBytes, long PeakHeldBytes, long Allocations, long Reuses,
    int FreeBlocks, long PerThreadBytes, long MappedBytes, long ArenaRents);

/// <summary>The bytes of per-thread kernel buffers alive in the process (counted as they grow and are finalized).</summary>
internal static class PerThreadScratch
{
    private static long _bytes;

    public static long Bytes => Interlocked.Read(ref _bytes);

    public static void Add(long bytes) => Interlocked.Add(ref _bytes, bytes);
}
