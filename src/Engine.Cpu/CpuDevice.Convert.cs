using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    // Large half-precision tensors are widened in parallel chunks (the direct convolution kernels read
    // their half weights this way; the GEMM packers widen panel by panel instead).
    private const int ParallelWidenChunk = 1 << 18;

    private unsafe void ConvertToF32(Tensor src, Span<float> dst)
    {
        var buffer = (CpuBuffer)src.Buffer;
        int offset = (int)src.Offset, length = (int)src.Length;
        switch (src.DType)
        {
            case DType.F32: buffer.F32!.AsSpan(offset, length).CopyTo(dst); break;
            case DType.F16 when length >= 2 * ParallelWidenChunk && Threads > 1:
                fixed (float* d = dst)
                {
                    var half = buffer.F16!;
                    nint target = (nint)d;
                    Parallel.For(0, (length + ParallelWidenChunk - 1) / ParallelWidenChunk, Parallelism, chunk =>
                    {
                        int start = chunk * ParallelWidenChunk, count = Math.Min(ParallelWidenChunk, length - start);
                        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(half.AsSpan(offset + start, count), new Span<float>((float*)target + start, count));
                    });
                }
                break;
            case DType.F16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(buffer.F16!.AsSpan(offset, length), dst); break;
            default:
                var bits = buffer.BF16!.AsSpan(offset, length);
                for (int i = 0; i < bits.Length; i++) dst[i] = DTypeExtensions.BFloat16ToSingle(bits[i]);
                break;
        }
    }

    /// <inheritdoc />
    protected override void CopyCore(Tensor src, Tensor dst)
    {
        if (dst.DType == DType.F32) { ConvertToF32(src, Span(dst)); return; }
        float[] tmp = src.DType == DType.F32 ? Span(src).ToArray() : new float[src.Length];
        if (src.DType != DType.F32) ConvertToF32(src, tmp);
        var buffer = (CpuBuffer)dst.Buffer;
        int offset = (int)dst.Offset;
        if (dst.DType == DType.F16) System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(tmp, buffer.F16!.AsSpan(offset, tmp.Length));
        else for (int i = 0; i < tmp.Length; i++) buffer.BF16![offset + i] = DTypeExtensions.SingleToBFloat16(tmp[i]);
    }
}
