using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// Makes the C heap give the CPU device's freed buffers back to the system. glibc serves blocks from 128 KiB up
/// with their own mappings (unmapped on free) only until the first such block is freed: it then raises that
/// threshold to the freed size (up to 32 MiB), so later buffers of up to 32 MiB come from the heap, and a freed one in
/// the middle of it stays resident (measured: 30 x 10 MiB allocated and freed three times left 62 MiB resident).
/// A fixed threshold of <see cref="MapThresholdBytes"/> keeps every buffer from that size on in its own mapping.
/// </summary>
internal static partial class NativeHeap
{
    /// <summary>Blocks from this size on are mapped and unmapped on their own.</summary>
    public const int MapThresholdBytes = 1 << 20;

    private const int MallocMmapThreshold = -3; // glibc's M_MMAP_THRESHOLD

    private static int _configured;

    /// <summary>Sets the threshold once per process (glibc only; elsewhere nothing happens).</summary>
    public static void Configure()
    {
        if (Interlocked.Exchange(ref _configured, 1) != 0 || !OperatingSystem.IsLinux()) return;
        try { Mallopt(MallocMmapThreshold, MapThresholdBytes); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc (e.g. musl)
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int Mallopt(int param, int value);
}
