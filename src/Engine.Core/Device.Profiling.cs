using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// The per-op profiler that times every op this device runs, or null (the default: ops then pay one null test).
    /// Attach it after loading the weights to profile only the forward work.
    /// </summary>
    public OpProfiler? Profiler { get; set; }

    /// <summary>Starts timing one op on the attached <see cref="Profiler"/>; call only when it is not null.</summary>
    private ProfileScope BeginOp(in OpKey key) => Profiler!.Begin(this, key);
}
