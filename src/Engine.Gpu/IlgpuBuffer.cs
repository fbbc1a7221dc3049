using Engine.Core;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace Engine.Gpu;

/// <summary>
/// Accelerator storage of the ILGPU device: one ILGPU buffer of the dtype's element type
/// (float, <see cref="ILGPU.Half"/>, or bfloat16 bits as ushort).
/// </summary>
internal sealed class IlgpuBuffer : DeviceBuffer
{
    public IlgpuBuffer(Accelerator accelerator, DType dtype, long length) : base(dtype, length)
    {
        // A full device is the caller's out-of-memory, like a failed host allocation, not a driver error.
        try
        {
            switch (dtype)
            {
                case DType.F32: F32 = accelerator.Allocate1D<float>(length); break;
                case DType.F16: F16 = accelerator.Allocate1D<ILGPU.Half>(length); break;
                default: BF16 = accelerator.Allocate1D<ushort>(length); break;
            }
        }
        catch (Exception e) when (IsOutOfMemory(e))
        {
            throw new OutOfMemoryException($"{accelerator.Name}: cannot allocate {length * dtype.Size()} bytes of device memory ({accelerator.MemorySize} in all).", e);
        }
    }

    // The drivers' codes by name: CUDA_ERROR_OUT_OF_MEMORY, CL_MEM_OBJECT_ALLOCATION_FAILURE, CL_OUT_OF_RESOURCES.
    private static bool IsOutOfMemory(Exception e) => e switch
    {
        CudaException c => $"{c.Error}".Contains("OUT_OF_MEMORY", StringComparison.Ordinal),
        CLException c => $"{c.Error}" is var code && (code.Contains("ALLOCATION_FAILURE", StringComparison.Ordinal) || code.Contains("OUT_OF_RESOURCES", StringComparison.Ordinal)),
        _ => false,
    };

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
