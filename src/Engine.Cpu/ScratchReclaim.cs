namespace Engine.Cpu;

/// <summary>
/// The CPU devices alive in the process, whose pools give memory back when <see cref="KernelScratch"/> must map a new
/// block: free pool buffers worth the block are dropped first (least recently returned first), so the block takes
/// their memory rather than adding to it. Thread-safe.
/// </summary>
internal static class ScratchReclaim
{
    private static readonly List<WeakReference<CpuDevice>> Devices = new();

    public static void Register(CpuDevice device)
    {
        lock (Devices)
        {
            Devices.RemoveAll(w => !w.TryGetTarget(out _));
            Devices.Add(new WeakReference<CpuDevice>(device));
        }
        KernelScratch.SetReclaimer(Reclaim);
    }

    public static void Unregister(CpuDevice device)
    {
        lock (Devices) Devices.RemoveAll(w => !w.TryGetTarget(out var d) || ReferenceEquals(d, device));
    }

    /// <summary>Frees pooled buffers of the devices, the newest device first, until <paramref name="bytes"/> are freed; returns the bytes freed.</summary>
    private static long Reclaim(long bytes)
    {
        List<CpuDevice> devices;
        lock (Devices) devices = Devices.Select(w => w.TryGetTarget(out var d) ? d : null).OfType<CpuDevice>().Reverse().ToList();
        long released = 0;
        foreach (var device in devices)
        {
            if (released >= bytes) break;
            released += device.ReleasePooled(bytes - released);
        }
        return released;
    }
}
