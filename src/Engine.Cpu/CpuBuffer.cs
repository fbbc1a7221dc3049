using Engine.Core;

namespace Engine.Cpu;

/// <summary>Native storage of the CPU device: one <see cref="NativeArray{T}"/> per dtype (BF16 kept as raw bits).</summary>
internal sealed class CpuBuffer : DeviceBuffer
{
    public CpuBuffer(DType dtype, long length, Orphans orphans, bool arena) : base(dtype, length)
    {
        if (length > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(length), $"A CPU tensor holds at most {Array.MaxLength} elements; {length} requested.");
        switch (dtype)
        {
            case DType.F32: F32 = new NativeArray<float>((int)length, orphans, arena); break;
            case DType.F16: F16 = new NativeArray<Half>((int)length, orphans, arena); break;
            default: BF16 = new NativeArray<ushort>((int)length, orphans, arena); break;
        }
    }

    public NativeArray<float>? F32 { get; }
    public NativeArray<Half>? F16 { get; }
    public NativeArray<ushort>? BF16 { get; }

    /// <summary>Frees the memory at once (the pool dropped this buffer).</summary>
    public override void Dispose()
    {
        F32?.Free();
        F16?.Free();
        BF16?.Free();
    }
}
