using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// A heap in one reserved range of address space: best-fit placement, splitting and coalescing. Freed memory merges
/// with its free neighbours at once and serves the next request of any size, so the memory held follows the bytes in
/// use rather than the set of sizes ever used. <see cref="CpuMemory"/> keeps the process's one instance for the CPU
/// devices' large buffers and the kernels' scratch.
/// </summary>
/// <remarks>
/// <para>
/// Allocation takes the smallest free range that holds the request (the lowest address among equal sizes) and splits
/// off the rest; with none, it extends the top of the used range. A free that reaches the top (after merging with
/// its neighbours) lowers the top, so no free range ever ends at it. The pages below the highest top since the last
/// <see cref="Trim"/> stay resident (<see cref="HeldBytes"/>), so a loop that repeats its requests faults no page
/// after its first pass.
/// <see cref="Trim"/> gives every free page back to the system.
/// </para>
/// <para>
/// The range is reserved without access (<c>mmap</c> with <c>PROT_NONE</c>: no memory and no commit charge) and made
/// writable in steps of <see cref="CommitStep"/> as the top rises. Linux only; thread-safe.
/// </para>
/// </remarks>
internal sealed unsafe partial class NativeArena : IDisposable
{
    /// <summary>Placement granule: every block starts and ends on a page, so <see cref="Trim"/> releases free pages exactly.</summary>
    public const long Granule = 4096;

    /// <summary>The writable part of the reservation grows in steps of this many bytes.</summary>
    public const long CommitStep = 32L << 20;

    private readonly object _gate = new();
    private byte* _base;
    private readonly long _reserved;

    // Free ranges by (size, offset) for best fit, and by their start and end for coalescing.
    private readonly SortedSet<(long Size, long Offset)> _bySize = new();
    private readonly Dictionary<long, long> _freeAt = new();  // start -> size
    private readonly Dictionary<long, long> _freeEnd = new(); // end -> start
    private readonly Dictionary<long, long> _used = new();    // start -> size
    private long _top, _committed, _touched, _inUse;

    private NativeArena(byte* address, long reserved)
    {
        _base = address;
        _reserved = reserved;
    }

    /// <summary>
    /// Reserves <paramref name="bytes"/> of address space (rounded up to <see cref="CommitStep"/>), or a half, a quarter
    /// ... down to <paramref name="minBytes"/> where the system refuses; null where none can be reserved or the system
    /// is not Linux.
    /// </summary>
    public static NativeArena? TryCreate(long bytes, long minBytes = CommitStep)
    {
        if (!OperatingSystem.IsLinux() || !Environment.Is64BitProcess) return null;
        for (long size = (bytes + CommitStep - 1) / CommitStep * CommitStep; size >= Math.Max(CommitStep, minBytes); size /= 2)
        {
            try
            {
                nint p = Mmap(0, (nuint)size, ProtNone, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
                if (p != -1 && p != 0) return new NativeArena((byte*)p, size);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return null; }
        }
        return null;
    }

    /// <summary>Bytes of address space reserved.</summary>
    public long ReservedBytes => _reserved;

    /// <summary>Bytes of the blocks allocated now (each rounded up to <see cref="Granule"/>).</summary>
    public long InUseBytes
    {
        get { lock (_gate) return _inUse; }
    }

    /// <summary>Bytes resident: every page below the highest top since the last <see cref="Trim"/>.</summary>
    public long HeldBytes
    {
        get { lock (_gate) return _touched; }
    }

    /// <summary>Free ranges below the top.</summary>
    public int FreeRanges
    {
        get { lock (_gate) return _freeAt.Count; }
    }

    /// <summary>
    /// <paramref name="bytes"/> rounded up to <see cref="Granule"/>, page aligned, contents undefined; null when it
    /// does not fit in what is left of the reservation or the system refuses to make it writable.
    /// </summary>
    public void* TryAllocate(long bytes)
    {
        long size = Math.Max(Granule, (bytes + Granule - 1) / Granule * Granule);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_base == null, this);
            long offset;
            // The view's Min is one walk down the tree (its Count would visit every element); empty, it is (0, 0).
            var (freeSize, freeOffset) = _bySize.GetViewBetween((size, 0), (long.MaxValue, long.MaxValue)).Min;
            if (freeSize >= size)
            {
                RemoveFree(freeOffset, freeSize);
                if (freeSize > size) AddFree(freeOffset + size, freeSize - size);
                offset = freeOffset;
            }
            else
            {
                // No free range touches the top (a free that reaches it lowers it), so the block starts at the top.
                offset = _top;
                long top = offset + size;
                if (top > _reserved || !Commit(top)) return null;
                _top = top;
                _touched = Math.Max(_touched, _top);
            }
            _used[offset] = size;
            _inUse += size;
            return _base + offset;
        }
    }

    /// <summary>Whether <paramref name="pointer"/> lies in this arena's reservation.</summary>
    public bool Owns(void* pointer) => (byte*)pointer >= _base && (byte*)pointer < _base + _reserved;

    /// <summary>Returns a block from <see cref="TryAllocate"/>; it merges with its free neighbours at once.</summary>
    public void Free(void* pointer)
    {
        lock (_gate)
        {
            long offset = (byte*)pointer - _base;
            if (!Owns(pointer) || !_used.Remove(offset, out long size))
                throw new InvalidOperationException($"arena block at offset {offset} freed twice or never allocated here.");
            _inUse -= size;
            if (_freeAt.TryGetValue(offset + size, out long after))
            {
                RemoveFree(offset + size, after);
                size += after;
            }
            if (_freeEnd.TryGetValue(offset, out long before))
            {
                RemoveFree(before, offset - before);
                size += offset - before;
                offset = before;
            }
            if (offset + size == _top) _top = offset;
            else AddFree(offset, size);
        }
    }

    /// <summary>
    /// Gives the pages of every free range, and those above the top, back to the system (they read as zeros when used
    /// again); returns the bytes released. Safe while blocks are in use: only free pages go.
    /// </summary>
    public long Trim()
    {
        lock (_gate)
        {
            if (_base == null) return 0;
            long released = 0;
            foreach (var (start, size) in _freeAt)
            {
                Madvise((nint)(_base + start), (nuint)size, MadvDontNeed);
                released += size;
            }
            if (_touched > _top)
            {
                Madvise((nint)(_base + _top), (nuint)(_touched - _top), MadvDontNeed);
                released += _touched - _top;
            }
            _touched = _top;
            return released;
        }
    }

    /// <summary>
    /// Unmaps the reservation, blocks still in use included (tests create arenas of their own; the process's arena
    /// lives as long as the process).
    /// </summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_base == null) return;
            Munmap((nint)_base, (nuint)_reserved);
            _base = null;
        }
    }

    private bool Commit(long top)
    {
        if (top <= _committed) return true;
        long end = Math.Min(_reserved, (top + CommitStep - 1) / CommitStep * CommitStep);
        if (Mprotect((nint)(_base + _committed), (nuint)(end - _committed), ProtRead | ProtWrite) != 0) return false;
        _committed = end;
        return true;
    }

    private void AddFree(long offset, long size)
    {
        _bySize.Add((size, offset));
        _freeAt[offset] = size;
        _freeEnd[offset + size] = offset;
    }

    private void RemoveFree(long offset, long size)
    {
        _bySize.Remove((size, offset));
        _freeAt.Remove(offset);
        _freeEnd.Remove(offset + size);
    }

    // Linux values (x86-64 and arm64 alike).
    private const int ProtNone = 0, ProtRead = 1, ProtWrite = 2;
    private const int MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    private const int MadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(nint address, nuint length, int protection);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);
}
