using System.Runtime.InteropServices;

namespace Engine.Models.Checkpoints;

/// <summary>
/// Drops a read tensor's pages from the process's view of a memory-mapped file (Linux <c>madvise(MADV_DONTNEED)</c>;
/// the pages stay in the page cache). Every tensor is read once, so without this a multi-gigabyte checkpoint would
/// stay counted in the resident set until the file is unmapped; elsewhere it does nothing.
/// </summary>
internal static unsafe partial class MappedPages
{
    private const int DontNeed = 4;
    private static readonly long PageSize = Environment.SystemPageSize;

    /// <summary>Releases the whole pages inside <paramref name="bytes"/> (a span of a read-only file mapping).</summary>
    public static void Release(ReadOnlySpan<byte> bytes)
    {
        if (!OperatingSystem.IsLinux() || bytes.Length < PageSize) return;
        fixed (byte* p = bytes)
        {
            // Only pages wholly inside the span: a neighbour's data is never touched.
            long start = ((long)p + PageSize - 1) / PageSize * PageSize;
            long end = ((long)p + bytes.Length) / PageSize * PageSize;
            if (end > start)
            {
                try { _ = Madvise((nint)start, (nuint)(end - start), DontNeed); }
                catch (DllNotFoundException) { }
                catch (EntryPointNotFoundException) { }
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static partial int Madvise(nint address, nuint length, int advice);
}
