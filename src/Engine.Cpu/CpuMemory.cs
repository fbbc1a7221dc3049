using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// The native memory of the CPU devices' buffers and the kernels' shared scratch: blocks of at least
/// <see cref="ArenaMinBytes"/> come from the process's <see cref="NativeArena"/> (where it exists), the rest from the
/// system allocator; both are counted, so <see cref="Stats"/> reports what the engine holds at its peak.
/// </summary>
/// <remarks>
/// With the arena, memory freed by one tensor or kernel is reused by the next request of any size, so neither the
/// devices' pools nor the kernel scratch keep free blocks of the sizes it serves, and the memory held follows the
/// bytes in use: on the full-size SD 1.5 UNet step, 1.14x the peak live activations against 2.0x with size-keyed
/// pools (docs/PERFORMANCE.md, "UNet step memory"). The arena exists on 64-bit Linux unless the environment sets
/// <c>ENGINE_CPU_ARENA=0</c>; elsewhere, or for a request that does not fit, the system allocator serves and the
/// pools cache as before. Thread-safe.
/// </remarks>
internal static unsafe class CpuMemory
{
    /// <summary>Requests from this size on are served by the arena; smaller ones by the system allocator.</summary>
    public const long ArenaMinBytes = 64 * 1024;

    /// <summary>Whether the environment turned the arena off (<c>ENGINE_CPU_ARENA=0</c>).</summary>
    public static readonly bool ArenaTurnedOff = Environment.GetEnvironmentVariable("ENGINE_CPU_ARENA") == "0";

    /// <summary>The process's arena, or null (not Linux, <see cref="ArenaTurnedOff"/>, or no address space).</summary>
    public static readonly NativeArena? Arena =
        ArenaTurnedOff ? null
        // Twice the machine's memory leaves room for fragmentation; none of it is memory until used.
        : NativeArena.TryCreate(Math.Max(16L << 30, 2 * GC.GetGCMemoryInfo().TotalAvailableMemoryBytes), minBytes: 1L << 30);

    private static readonly object Gate = new();
    // Bytes from the system allocator now; the peak of those plus the arena's held bytes; the arena's peaks.
    private static long _system, _peakTotal, _peakArenaHeld, _peakArenaInUse;

    /// <summary>Whether a request of <paramref name="bytes"/> is one the arena serves (when it has room).</summary>
    public static bool ArenaServes(long bytes) => Arena is not null && bytes >= ArenaMinBytes;

    /// <summary>
    /// <paramref name="bytes"/> (at least 1), from the arena when <paramref name="useArena"/> is set and it serves the
    /// size, else from the system allocator; 64-byte aligned, contents undefined. Give it back with <see cref="Release"/>.
    /// </summary>
    public static void* Allocate(long bytes, bool useArena)
    {
        if (useArena && TryArena(bytes) is var fromArena && fromArena != null) return fromArena;
        var p = NativeMemory.AlignedAlloc((nuint)Math.Max(1, bytes), 64);
        lock (Gate)
        {
            _system += bytes;
            NotePeaks();
        }
        return p;
    }

    /// <summary>A block from the arena when it serves <paramref name="bytes"/> and has room, else null (the caller falls back).</summary>
    public static void* TryArena(long bytes)
    {
        if (!ArenaServes(bytes)) return null;
        var p = Arena!.TryAllocate(bytes);
        if (p != null) lock (Gate) NotePeaks();
        return p;
    }

    /// <summary>Frees <paramref name="bytes"/> (as allocated) from <see cref="Allocate"/> or <see cref="TryArena"/>.</summary>
    public static void Release(void* pointer, long bytes)
    {
        if (Arena is { } arena && arena.Owns(pointer))
        {
            arena.Free(pointer);
            return;
        }
        NativeMemory.AlignedFree(pointer);
        lock (Gate) _system -= bytes;
    }

    /// <summary>Whether <paramref name="pointer"/> came from the arena.</summary>
    public static bool InArena(void* pointer) => Arena is { } arena && arena.Owns(pointer);

    /// <summary>Gives the arena's free pages back to the system; returns the bytes released.</summary>
    public static long Trim() => Arena?.Trim() ?? 0;

    /// <summary>The counters now, with their peaks since the last <see cref="ResetPeaks"/>.</summary>
    public static ArenaStats Stats
    {
        get
        {
            lock (Gate)
            {
                NotePeaks();
                return new ArenaStats(Arena is not null, Arena?.ReservedBytes ?? 0, Arena?.InUseBytes ?? 0, Arena?.HeldBytes ?? 0,
                    _peakArenaInUse, _peakArenaHeld, Arena?.FreeRanges ?? 0, _system, _peakTotal);
            }
        }
    }

    /// <summary>Restarts the peaks at the current bytes.</summary>
    public static void ResetPeaks()
    {
        lock (Gate)
        {
            _peakArenaInUse = Arena?.InUseBytes ?? 0;
            _peakArenaHeld = Arena?.HeldBytes ?? 0;
            _peakTotal = _peakArenaHeld + _system;
        }
    }

    // Called under Gate whenever the arena or the system bytes may have grown.
    private static void NotePeaks()
    {
        long held = Arena?.HeldBytes ?? 0;
        _peakArenaHeld = Math.Max(_peakArenaHeld, held);
        _peakArenaInUse = Math.Max(_peakArenaInUse, Arena?.InUseBytes ?? 0);
        _peakTotal = Math.Max(_peakTotal, held + _system);
    }
}

/// <summary>Counters of the CPU devices' native memory (bytes); peaks since the last reset.</summary>
/// <param name="ArenaEnabled">Whether the process has the arena (64-bit Linux, unless <c>ENGINE_CPU_ARENA=0</c>).</param>
/// <param name="ReservedBytes">Address space the arena reserved (not memory).</param>
/// <param name="InUseBytes">Arena blocks allocated now.</param>
/// <param name="HeldBytes">Arena memory resident now: blocks in use, free ranges below the top and pages above it, up to the highest top since the last trim.</param>
/// <param name="PeakInUseBytes">Most arena bytes allocated at once.</param>
/// <param name="PeakHeldBytes">Most arena bytes held at once.</param>
/// <param name="FreeRanges">The arena's free ranges below its top now.</param>
/// <param name="SystemBytes">Bytes from the system allocator now: small buffers and blocks, and everything where the arena is off or full.</param>
/// <param name="PeakTotalBytes">
/// Most of <paramref name="HeldBytes"/> plus <paramref name="SystemBytes"/> at once: the native memory the CPU devices'
/// buffers (weights included; live, pooled or orphaned) and the kernels' shared scratch held at their peak.
/// </param>
public readonly record struct ArenaStats(bool ArenaEnabled, long ReservedBytes, long InUseBytes, long HeldBytes, long PeakInUseBytes, long PeakHeldBytes,
    int FreeRanges, long SystemBytes, long PeakTotalBytes);
