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
    public readonly float Read(long index) => HalfBits.ToFloat(Interop.FloatAsInt(View[index]));
}

/// <summary>bfloat16 weights stored as their 16 bits (the high half of a float32).</summary>
public struct BF16Weights(ArrayView<ushort> view) : IWeightView
{
    /// <summary>The storage.</summary>
    public ArrayView<ushort> View = view;

    /// <inheritdoc />
    public readonly float Read(long index) => ScalarMath.FromBFloat16(View[index]);
}

/// <summary>
/// Write access to an output stored as float32, float16 or bfloat16: GEMM and convolution are generic
/// over it (and read their activation operand through <see cref="IWeightView"/>), so half activations
/// are rounded once, as the float32 accumulator is stored.
/// </summary>
public interface IOutputView
{
    /// <summary>Stores <paramref name="value"/> at element <paramref name="index"/>.</summary>
    void Write(long index, float value);
}

/// <summary>Float32 output.</summary>
public struct F32Output(ArrayView<float> view) : IOutputView
{
    /// <summary>The storage.</summary>
    public ArrayView<float> View = view;

    /// <inheritdoc />
    public readonly void Write(long index, float value) => View[index] = value;
}

/// <summary>IEEE float16 output (round to nearest even, <see cref="HalfBits"/>).</summary>
public struct F16Output(ArrayView<Half> view) : IOutputView
{
    /// <summary>The storage.</summary>
    public ArrayView<Half> View = view;

    /// <inheritdoc />
    public readonly void Write(long index, float value) => View[index] = Interop.IntAsFloat(HalfBits.FromFloat(value));
}

/// <summary>bfloat16 output stored as its 16 bits (round to nearest even).</summary>
public struct BF16Output(ArrayView<ushort> view) : IOutputView
{
    /// <summary>The storage.</summary>
    public ArrayView<ushort> View = view;

    /// <inheritdoc />
    public readonly void Write(long index, float value) => View[index] = ScalarMath.ToBFloat16(value);
}
