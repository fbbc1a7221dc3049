using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Engine.Bench.Cpu;

/// <summary>
/// The process's CPU time (user + system, all threads) for the Stopwatch harnesses that time by CPU on a shared
/// machine: getrusage on Linux (microsecond resolution, no allocation), the runtime's count elsewhere.
/// </summary>
internal static class ProcessCpu
{
    [StructLayout(LayoutKind.Sequential)]
    private struct RUsage
    {
        public long UserSeconds, UserMicros, SystemSeconds, SystemMicros;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = 14)] public long[] Rest;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int getrusage(int who, ref RUsage usage);

    /// <summary>CPU seconds the process has used so far.</summary>
    public static double Seconds()
    {
        if (!OperatingSystem.IsLinux()) return Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;
        var u = new RUsage { Rest = new long[14] };
        getrusage(0, ref u);
        return u.UserSeconds + u.UserMicros * 1e-6 + u.SystemSeconds + u.SystemMicros * 1e-6;
    }
}
