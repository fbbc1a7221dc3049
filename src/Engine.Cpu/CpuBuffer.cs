using Engine.Core;

namespace Engine.Cpu;

/// <summary>Managed storage of the CPU device: one array per dtype (BF16 kept as raw bits).</summary>
internal sealed class CpuBuffer : DeviceBuffer
{
    public CpuBuffer(DType dtype, long length) : base(dtype, length)
    {
        if (length > Array.MaxLength) throw new ArgumentOutOfRangeException(nameof(length), $"A CPU tensor holds at most {Array.MaxLength} elements; {length} requested.");
        switch (dtype)
        {
            case DType.F32: F32 = GC.AllocateUninitializedArray<float>((int)length); break;
            case DType.F16: F16 = GC.AllocateUninitializedArray<Half>((int)length); break;
            default: BF16 = GC.AllocateUninitializedArray<ushort>((int)length); break;
        }
    }

    public float[]? F32 { get; }
    public Half[]? F16 { get; }
    public ushort[]? BF16 { get; }

    public override void Dispose() { }
}
