using Engine.Core;
using ILGPU.Runtime;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void CopyCore(Tensor src, Tensor dst)
    {
        if (src.Length == 0) return;
        int n = Extent(src.Length, "Copy");
        switch ((src.DType, dst.DType))
        {
            case (DType.F32, DType.F32): View(src).CopyTo(Stream, View(dst)); break;
            case (DType.F16, DType.F16): ViewF16(src).CopyTo(Stream, ViewF16(dst)); break;
            case (DType.BF16, DType.BF16): ViewBF16(src).CopyTo(Stream, ViewBF16(dst)); break;
            case (DType.F32, DType.F16): _kernels.F32ToF16(n, View(src), ViewF16(dst)); break;
            case (DType.F16, DType.F32): _kernels.F16ToF32(n, ViewF16(src), View(dst)); break;
            case (DType.F32, DType.BF16): _kernels.F32ToBF16(n, View(src), ViewBF16(dst)); break;
            case (DType.BF16, DType.F32): _kernels.BF16ToF32(n, ViewBF16(src), View(dst)); break;
            case (DType.F16, DType.BF16): _kernels.F16ToBF16(n, ViewF16(src), ViewBF16(dst)); break;
            default: _kernels.BF16ToF16(n, ViewBF16(src), ViewF16(dst)); break;
        }
    }
}
