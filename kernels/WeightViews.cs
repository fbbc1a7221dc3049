using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>
/// Read access to a weight operand stored as float32, float16 or bfloat16. GEMM and convolution
/// kernels are generic over it, so half-precision weights are widened as they are loaded into
/// shared memory and every product still accumulates in float32.
/// </summary>
public interface IWeightView
{
    /// <summary>Element <paramref name="index"/> as float32.</summary>
    float Read(long index);
}

/// <summary>Float32 weights.</summary>
public struct F32Weights(ArrayView<float> view) : IWeightView
{
    /// <summary>The storage.</summary>
    public ArrayView<float> View = view;

    /// <inheritdoc />
    public readonly float Read(long index) => View[index];
}

/// <summary>IEEE float16 weights (widened exactly, on every backend without SM 5.3 half arithmetic).</summary>
public struct F16Weights(ArrayView<Half> view) : IWeightView
{
    /// <summary>The storage.</summary>
    public ArrayView<Half> View = view;

    /// <inheritdoc />
    public readonly float Read(long index) => ScalarMath.FromHalfBits(Interop.FloatAsInt(View[index]));
}

/// <summary>bfloat16 weights stored as their 16 bits (the high half of a float32).</summary>
public struct BF16Weights(ArrayView<ushort> view) : IWeightView
{
    /// <summary>The storage.</summary>
    public ArrayView<ushort> View = view;

    /// <inheritdoc />
    public readonly float Read(long index) => ScalarMath.FromBFloat16(View[index]);
}
