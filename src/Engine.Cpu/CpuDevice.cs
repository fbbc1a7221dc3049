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
    public CpuDevice(int threads = 0)
    {
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        Parallelism = new ParallelOptions { MaxDegreeOfParallelism = Threads };
    }

    /// <summary>Worker threads used by parallel ops.</summary>
    public int Threads { get; }

    internal ParallelOptions Parallelism { get; }

    /// <inheritdoc />
    public override string Name => $"cpu ({Threads} threads, {SimdDescription})";

    /// <inheritdoc />
    public override string Kind => "cpu";

    private static string SimdDescription =>
        System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? "AVX-512" :
        System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated ? "AVX2" : "scalar";

    /// <inheritdoc />
    protected override DeviceBuffer CreateBuffer(DType dtype, long length) => new CpuBuffer(dtype, length);

    /// <summary>Bytes of freed buffers after which the CPU device collects them (see <see cref="OnBuffersFreed"/>).</summary>
    public const long CollectAfterFreedBytes = 64L << 20;

    private long _freedSinceCollect;

    /// <summary>
    /// The CPU device's buffers are managed arrays on the large-object heap, which the runtime sweeps only in a
    /// full collection, and its budget grows with the weights it holds: without one, freed activations pile up
    /// beside the new ones. Once <see cref="CollectAfterFreedBytes"/> are freed, an aggressive collection (blocking,
    /// compacting, returning free regions to the system) runs before the buffer that replaces them is created: a
    /// plain one left the freed arrays' memory committed and fragmented, so larger new arrays took fresh memory
    /// beside it (docs/PERFORMANCE.md, full-size SD 1.5).
    /// </summary>
    protected override void OnBuffersFreed(long bytes)
    {
        if (Interlocked.Add(ref _freedSinceCollect, bytes) < CollectAfterFreedBytes) return;
        Interlocked.Exchange(ref _freedSinceCollect, 0);
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        Collections++;
    }

    /// <summary>Collections made by <see cref="OnBuffersFreed"/> (for reports).</summary>
    public int Collections { get; private set; }

    /// <summary>The float32 elements of a tensor as a span (the tensor must be F32).</summary>
    internal static Span<float> Span(Tensor t) => ((CpuBuffer)t.Buffer).F32.AsSpan((int)t.Offset, (int)t.Length);

    /// <summary>The backing array and offset of a float32 tensor, for parallel loops that cannot capture spans.</summary>
    internal static (float[] Array, int Offset) Raw(Tensor t) => (((CpuBuffer)t.Buffer).F32!, (int)t.Offset);

    /// <inheritdoc />
    protected override void CopyFromHostCore(ReadOnlySpan<byte> bytes, Tensor dst)
    {
        var buffer = (CpuBuffer)dst.Buffer;
        int offset = (int)dst.Offset, length = (int)dst.Length;
        Span<byte> target = dst.DType switch
        {
            DType.F32 => MemoryMarshal.AsBytes(buffer.F32.AsSpan(offset, length)),
            DType.F16 => MemoryMarshal.AsBytes(buffer.F16.AsSpan(offset, length)),
            _ => MemoryMarshal.AsBytes(buffer.BF16.AsSpan(offset, length)),
        };
        bytes.CopyTo(target);
    }

    /// <inheritdoc />
    protected override void CopyToHostCore(Tensor src, Span<float> dst) => ConvertToF32(src, dst);
}
