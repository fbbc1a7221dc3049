using System.Globalization;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Cli;

/// <summary>
/// The memory of one forward pass for <c>engine forward --profile</c>: the weights (device bytes live after the load),
/// the peak of live tensors and of live plus pooled buffers above them, the CPU kernels' scratch, and the process's
/// resident set after the load and at its peak during the pass (Linux: the peak is reset after the load through
/// /proc/self/clear_refs, so it is the pass's own).
/// </summary>
public sealed class MemoryProbe
{
    private long _weights, _rssAfterLoad;
    private bool _peakReset;

    /// <summary>Call after the weights are loaded, before the pass.</summary>
    public void AfterLoad(Device device)
    {
        _weights = device.Transfers.LiveBytes;
        device.Transfers.ResetPeaks();
        CpuDevice.ResetKernelScratchPeaks();
        CpuDevice.ResetArenaPeaks();
        _rssAfterLoad = StatusKiB("VmRSS:") * 1024;
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            _peakReset = true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>The report after the pass (MiB; the ratio is (peak RSS - weights) / peak live activations).</summary>
    public string Format(Device device)
    {
        const double MiB = 1 << 20;
        var t = device.Transfers;
        var scratch = CpuDevice.KernelScratchStats;
        long activations = t.PeakLiveBytes - _weights, held = t.PeakHeldBytes - _weights;
        long peakRss = StatusKiB("VmHWM:") * 1024;
        var c = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            string.Format(c, "memory: weights {0:F0} MiB, peak live activations {1:F0} MiB, peak live + pool {2:F0} MiB ({3:F2}x the activations)",
                _weights / MiB, activations / MiB, held / MiB, activations > 0 ? (double)held / activations : 0),
        };
        if (device.Kind == "cpu")
        {
            var arena = CpuDevice.ArenaStats;
            lines.Add(string.Format(c, "kernel scratch: shared peak held {0:F0} MiB (peak in use {1:F0} MiB, {7} arena blocks, {2} blocks mapped ({6:F0} MiB), {3} reused, {4:F0} MiB held now), per-thread {5:F1} MiB",
                scratch.PeakHeldBytes / MiB, scratch.PeakInUseBytes / MiB, scratch.Allocations, scratch.Reuses, scratch.HeldBytes / MiB, scratch.PerThreadBytes / MiB,
                scratch.MappedBytes / MiB, scratch.ArenaRents));
            lines.Add(arena.ArenaEnabled
                ? string.Format(c, "arena: peak held {0:F0} MiB (peak in use {1:F0} MiB, {2} free ranges now); system-allocated {3:F0} MiB now",
                    arena.PeakHeldBytes / MiB, arena.PeakInUseBytes / MiB, arena.FreeRanges, arena.SystemBytes / MiB)
                : "arena: off (system allocator and pools)");
            long engine = arena.PeakTotalBytes - _weights + scratch.PerThreadBytes;
            lines.Add(string.Format(c, "engine memory above the weights: peak {0:F0} MiB (arena held + system-allocated buffers and scratch at once, + per-thread): {1:F2}x the activations",
                engine / MiB, activations > 0 ? (double)engine / activations : 0));
        }
        if (peakRss > 0)
            lines.Add(string.Format(c, "process RSS: {0:F0} MiB after the load, peak {1:F0} MiB{2}; (peak - weights) / activations = {3:F2}x",
                _rssAfterLoad / MiB, peakRss / MiB, _peakReset ? " during the pass" : " since the start", activations > 0 ? (double)(peakRss - _weights) / activations : 0));
        return string.Join(Environment.NewLine, lines) + Environment.NewLine;
    }

    private static long StatusKiB(string field)
    {
        if (!OperatingSystem.IsLinux()) return 0;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field, StringComparison.Ordinal))
                return long.Parse(line.AsSpan(field.Length).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture);
        return 0;
    }
}
