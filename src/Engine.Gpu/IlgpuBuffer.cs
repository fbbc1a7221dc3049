using Engine.Core;
using ILGPU;
using ILGPU.Runtime;

namespace Engine.Gpu;

/// <summary>
/// Accelerator storage of the ILGPU device: one ILGPU buffer of the dtype's element type
/// (float, <see cref="ILGPU.Half"/>, or bfloat16 bits as ushort).
/// </summary>
internal sealed class IlgpuBuffer : DeviceBuffer
{
    public IlgpuBuffer(Accelerator accelerator, DType dtype, long length) : base(dtype, length)
    {
        switch (dtype)
        {
            case DType.F32: F32 = accelerator.Allocate1D<float>(length); break;
            case DType.F16: F16 = accelerator.Allocate1D<ILGPU.Half>(length); break;
            default: BF16 = accelerator.Allocate1D<ushort>(length); break;
        }
    }

    public MemoryBuffer1D<float, Stride1D.Dense>? F32 { get; }
    public MemoryBuffer1D<ILGPU.Half, Stride1D.Dense>? F16 { get; }
    public MemoryBuffer1D<ushort, Stride1D.Dense>? BF16 { get; }

    public override void Dispose()
    {
        F32?.Dispose();
        F16?.Dispose();
        BF16?.Dispose();
    }
}
