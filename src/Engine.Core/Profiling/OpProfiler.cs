using System.Diagnostics;

namespace Engine.Core.Profiling;

/// <summary>
/// Times every op a <see cref="Device"/> runs while it is attached (<see cref="Device.Profiler"/>), by family and
/// shape (<see cref="OpKey"/>). Times are exclusive: an op called inside another (a per-call weight widening inside
/// a convolution, the MatMul behind a Linear) is taken out of the outer op's time and recorded on its own row, except
/// an op of the same family as the op around it, which is part of that op. Each op's end waits for the device
/// (<see cref="Device.Synchronize"/>), so queued GPU work is charged to the op that queued it. Besides wall time it
/// records the process's CPU time over the op (all threads), which a loaded, shared machine distorts less.
/// Used by one thread at a time, like the device it is attached to.
/// </summary>
public sealed class OpProfiler
{
    private sealed class Stat
    {
        public long Calls;
        public long WallTicks;
        public long CpuTicks;
        public double Flops;
    }

    private struct Frame
    {
        public OpKey Key;
        public bool Merged;
        public long Wall0, Cpu0, ChildWall, ChildCpu;
    }

    private readonly Dictionary<(string Family, string Shape), Stat> _stats = [];
    private readonly Stack<Frame> _open = new();

    /// <summary>Starts timing an op; the returned scope ends it.</summary>
    internal ProfileScope Begin(Device device, in OpKey key)
    {
        bool merged = _open.Count > 0 && IsPartOf(key.Family, _open.Peek().Key.Family);
        _open.Push(new Frame { Key = key, Merged = merged, Wall0 = Stopwatch.GetTimestamp(), Cpu0 = CpuTicks() });
        return new ProfileScope(this, device);
    }

    /// <summary>Ends the innermost open op.</summary>
    internal void End(Device device)
    {
        device.Synchronize();
        long wall = Stopwatch.GetTimestamp(), cpu = CpuTicks();
        var f = _open.Pop();
        long wallSpan = wall - f.Wall0, cpuSpan = cpu - f.Cpu0;
        if (f.Merged)
        {
            // Part of the op around it: the outer op keeps this time, its children stay children of the outer op.
            var outer = _open.Pop();
            outer.ChildWall += f.ChildWall;
            outer.ChildCpu += f.ChildCpu;
            _open.Push(outer);
            return;
        }
        if (_open.Count > 0)
        {
            var parent = _open.Pop();
            parent.ChildWall += wallSpan;
            parent.ChildCpu += cpuSpan;
            _open.Push(parent);
        }
        var k = (f.Key.Family, f.Key.Shape);
        if (!_stats.TryGetValue(k, out var stat)) _stats[k] = stat = new Stat();
        stat.Calls++;
        stat.WallTicks += Math.Max(0, wallSpan - f.ChildWall);
        stat.CpuTicks += Math.Max(0, cpuSpan - f.ChildCpu);
        stat.Flops += f.Key.Flops;
    }

    /// <summary>Forgets everything recorded so far (e.g. after a warm-up call).</summary>
    public void Reset()
    {
        if (_open.Count > 0) throw new InvalidOperationException("OpProfiler.Reset: an op is still being timed.");
        _stats.Clear();
    }

    /// <summary>What was recorded so far, as rows per shape and per family.</summary>
    public OpProfile Snapshot()
    {
        var rows = _stats.Select(kv => new OpProfile.Row(kv.Key.Family, kv.Key.Shape, kv.Value.Calls,
            kv.Value.WallTicks / (double)Stopwatch.Frequency, kv.Value.CpuTicks / (double)TimeSpan.TicksPerSecond, kv.Value.Flops));
        return new OpProfile(rows);
    }

    // An op of the family of the op around it, or the MatMul that a Linear runs, is how that op is implemented.
    private static bool IsPartOf(string inner, string outer) => inner == outer || (outer == "linear" && inner == "matmul");

    private static long CpuTicks() => Environment.CpuUsage.TotalTime.Ticks;
}

/// <summary>The open timing of one op; disposing it ends the op. The default value (no profiler attached) does nothing.</summary>
public readonly struct ProfileScope : IDisposable
{
    private readonly OpProfiler? _profiler;
    private readonly Device? _device;

    internal ProfileScope(OpProfiler profiler, Device device) { _profiler = profiler; _device = device; }

    /// <summary>Ends the op's timing.</summary>
    public void Dispose() => _profiler?.End(_device!);
}
