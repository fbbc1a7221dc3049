using System.Diagnostics;

namespace Engine.Generation;

/// <summary>
/// The wall time and the process's CPU time (all threads, user and kernel) since the last restart, for
/// <see cref="GenerationTiming"/>: on a shared machine the CPU time is the steadier measure of a phase.
/// </summary>
internal sealed class PhaseClock
{
    private readonly Stopwatch _wall = Stopwatch.StartNew();
    private TimeSpan _cpuStart = Environment.CpuUsage.TotalTime;

    /// <summary>Wall time since the last restart.</summary>
    public TimeSpan Elapsed => _wall.Elapsed;

    /// <summary>CPU time of the whole process since the last restart.</summary>
    public TimeSpan Cpu => Environment.CpuUsage.TotalTime - _cpuStart;

    /// <summary>Starts both clocks again from now.</summary>
    public void Restart()
    {
        _wall.Restart();
        _cpuStart = Environment.CpuUsage.TotalTime;
    }
}
