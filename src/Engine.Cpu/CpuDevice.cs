using System.Runtime.InteropServices;
using Engine.Core;

namespace Engine.Cpu;

/// <summary>
/// The fast path without a GPU: managed SIMD (System.Numerics.Tensors, Vector256/512) and
/// <see cref="Parallel"/> over independent rows, images or tiles. Ops live in partial files by family.
/// Ops may run concurrently only on distinct tensors; the device itself holds no per-op state.
/// </summary>
public sealed partial class CpuDevice : Device
{
    /// <summary>Creates a CPU device using up to <paramref name="threads"/> threads (default: all cores).</summary>
    /// <param name="threads">Worker threads; 0 for all cores.</param>
    /// <param name="arena">
    /// Whether large buffers come from the process's memory arena, unpooled (the default where the arena exists: Linux,
    /// unless <c>ENGINE_CPU_ARENA=0</c>); false puts every buffer through the system allocator and the device's pool,
    /// as on other systems.
    /// </param>
    public CpuDevice(int threads = 0, bool arena = true)
    {
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        _arena = arena && CpuMemory.Arena is not null;
        NativeHeap.Configure();
        Parallelism = new ParallelOptions { MaxDegreeOfParallelism = Threads };
        ScratchReclaim.Register(this);
    }

    /// <summary>Worker threads used by parallel ops.</summary>
    public int Threads { get; }

    internal ParallelOptions Parallelism { get; }

    /// <inheritdoc />
    public override string Name => $"cpu ({Threads} threads, {SimdDescription})";

    /// <inheritdoc />
    public override string Kind => "cpu";

    // Where the runtime has AVX-512F but prefers 256-bit vectors (DOTNET_PreferredVectorBitWidth=256, the default on
    // CPUs that throttle at 512 bits) the Vector512-width kernels (GEMM, attention, norms) run at 256 bits while the
    // direct and Winograd convolutions, which check AVX-512F itself, keep their 512-bit kernels.
    private static string SimdDescription =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" :
        System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? "AVX2, AVX-512 convolutions" :
        System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "scalar";

    private readonly Orphans _orphans = new();
    private readonly bool _arena;

    /// <summary>Whether this device's large buffers come from the process's memory arena (see the constructor).</summary>
    public bool UsesArena => _arena;

    /// <inheritdoc />
    /// <remarks>
    /// Buffers the arena serves are not pooled: a freed one merges into the arena's free memory at once, where a
    /// request of any size reuses it.
    /// </remarks>
    protected override bool PoolsBuffer(DType dtype, long length) => !(_arena && CpuMemory.ArenaServes(length * dtype.Size()));

    /// <inheritdoc />
    /// <remarks>
    /// A pooled size is created on a pool miss: kernel scratch idle for a while, worth the buffer, is freed first, so
    /// the buffer takes its memory. An arena size is created for every request.
    /// </remarks>
    protected override DeviceBuffer CreateBuffer(DType dtype, long length)
    {
        if (PoolsBuffer(dtype, length)) KernelScratch.ReleaseIdle(length * dtype.Size());
        return new CpuBuffer(dtype, length, _orphans, _arena);
    }

    /// <summary>
    /// Bytes of native memory the device's buffers hold (live tensors, the pool, and the buffers of undisposed
    /// tensors not yet freed). Buffers are native memory, freed when the pool drops them: the runtime never holds
    /// freed activations, so no collection is needed to give them back (docs/PERFORMANCE.md, full-size SD 1.5).
    /// </summary>
    public long NativeBytes => _orphans.Bytes;

    /// <summary>
    /// The CPU kernels' scratch: the blocks shared by every thread and op (in use, held, peaks) and the small buffers kernels
    /// keep per thread. Process-wide, not per device (docs/PERFORMANCE.md, "CPU kernel scratch").
    /// </summary>
    public static ScratchStats KernelScratchStats => KernelScratch.Stats;

    /// <summary>Restarts the peaks of <see cref="KernelScratchStats"/> at the current bytes.</summary>
    public static void ResetKernelScratchPeaks() => KernelScratch.ResetPeaks();

    /// <summary>
    /// The process's memory arena for large CPU buffers and scratch, and the native bytes of every CPU device buffer and
    /// shared scratch block with it (docs/PERFORMANCE.md, "UNet step memory").
    /// </summary>
    public static ArenaStats ArenaStats => CpuMemory.Stats;

    /// <summary>One line for <c>engine info</c>: where the CPU devices' memory comes from.</summary>
    public static string MemoryDescription => CpuMemory.Arena is { } arena
        ? $"cpu memory: arena for blocks of {CpuMemory.ArenaMinBytes >> 10} KiB and more ({arena.ReservedBytes >> 30} GiB of address space reserved; ENGINE_CPU_ARENA=0 turns it off)"
        : $"cpu memory: system allocator and size-keyed pools ({(CpuMemory.ArenaTurnedOff ? "ENGINE_CPU_ARENA=0" : "no arena on this system")})";

    /// <summary>Restarts the peaks of <see cref="ArenaStats"/> at the current bytes.</summary>
    public static void ResetArenaPeaks() => CpuMemory.ResetPeaks();

    /// <summary>Also frees the storage that undisposed tensors left to the finalizer (no op runs while the pool is trimmed).</summary>
    protected override void OnPoolTrimmed()
    {
        _orphans.FreeAll();
        KernelScratch.Trim();
        CpuMemory.Trim();
    }

    /// <inheritdoc />
    public override void Dispose()
    {
        base.Dispose();
        _orphans.Close();
        ScratchReclaim.Unregister(this);
    }

    /// <summary>The float32 elements of a tensor as a span (the tensor must be F32).</summary>
    internal static Span<float> Span(Tensor t) => ((CpuBuffer)t.Buffer).F32!.AsSpan((int)t.Offset, (int)t.Length);

    /// <summary>The backing array and offset of a float32 tensor, for parallel loops that cannot capture spans.</summary>
    internal static (NativeArray<float> Array, int Offset) Raw(Tensor t) => (((CpuBuffer)t.Buffer).F32!, (int)t.Offset);

    /// <inheritdoc />
    protected override void CopyFromHostCore(ReadOnlySpan<byte> bytes, Tensor dst)
    {
        var buffer = (CpuBuffer)dst.Buffer;
        int offset = (int)dst.Offset, length = (int)dst.Length;
        Span<byte> target = dst.DType switch
        {
            DType.F32 => MemoryMarshal.AsBytes(buffer.F32!.AsSpan(offset, length)),
            DType.F16 => MemoryMarshal.AsBytes(buffer.F16!.AsSpan(offset, length)),
            _ => MemoryMarshal.AsBytes(buffer.BF16!.AsSpan(offset, length)),
        };
        bytes.CopyTo(target);
    }

    /// <inheritdoc />
    protected override void CopyToHostCore(Tensor src, Span<float> dst) => ConvertToF32(src, dst);
}
