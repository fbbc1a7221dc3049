using ILGPU;

namespace Engine.Kernels;

/// <summary>exp(x - max): the summand of the softmax denominator, as <see cref="NormKernels.Softmax"/> computes it.</summary>
public struct ExpShiftTerm : ISumTerm
{
    /// <summary>The row maximum.</summary>
    public float Max;

    /// <inheritdoc />
    public readonly float Of(float x) => MathF.Exp(x - Max);
}

/// <summary>Softmax's output value: exp(x - max) / sum, as <see cref="NormKernels.Softmax"/> computes it.</summary>
public struct SoftmaxApply : INormApply
{
    /// <summary>The row maximum and 1 / sum exp(x - max).</summary>
    public float Max, Inverse;

    /// <inheritdoc />
    public readonly float Apply(int i, float x) => MathF.Exp(x - Max) * Inverse;
}

/// <summary>
/// Softmax over the last dimension of F16 / BF16 activations: half input and output of one format, fp32 statistics
/// (the row maximum and the sum of exp(x - max)), 64-bit loads and stores of four halves where the row is 8-byte
/// aligned. Each thread sums exp(x - max) over the very elements, in the very order, of the float32
/// <see cref="NormKernels.Softmax"/> (through the quad tile of <see cref="HalfNormKernels"/>), and the maximum is
/// exact in any order, so on rounded inputs the result is the float32 kernel's, rounded once.
/// </summary>
public static class HalfSoftmaxKernels
{
    /// <summary>
    /// One row per group. Launch: grid (rows), group G (power of two, at most 256), (1 +
    /// <see cref="HalfNormKernels.TileFactor"/>) G floats of dynamic shared memory (the reduction scratch, then the quad tile).
    /// </summary>
    public static void Softmax<TF>(HalfTensor x, HalfTensor output, int d) where TF : struct, IHalfFormat
    {
        var shared = SharedMemory.GetDynamic<float>();
        int t = Group.IdxX, g = Group.DimX;
        var scratch = shared.SubView(0, g);
        var tile = shared.SubView(g, HalfNormKernels.TileFactor * g);
        long start = (long)Grid.IdxX * d;
        float max = NormKernels.GroupMax(ThreadMax<TF>(x, start, d, t, g), scratch);
        float sum = NormKernels.GroupSum(HalfNormKernels.ThreadSum<TF, ExpShiftTerm>(x, start, 0, d, new ExpShiftTerm { Max = max }, tile), scratch);
        HalfNormKernels.ApplyRange<TF, SoftmaxApply>(x, output, start, 0, d, new SoftmaxApply { Max = max, Inverse = 1f / sum });
    }

    // The float32 kernel starts from -float.MaxValue (a row of -inf then gives NaN there and here alike); max is exact in any order.
    private static float ThreadMax<TF>(HalfTensor x, long start, int d, int t, int g) where TF : struct, IHalfFormat
    {
        float max = -float.MaxValue;
        int quads = x.QuadAligned(start) ? d / HalfNormKernels.Quad : 0;
        for (int q = t; q < quads; q += g)
        {
            ulong v = x.ReadQuad(start + HalfNormKernels.Quad * q);
            for (int j = 0; j < HalfNormKernels.Quad; j++) max = MathF.Max(max, HalfTensor.Lane<TF>(v, j));
        }
        for (int i = HalfNormKernels.Quad * quads + t; i < d; i += g) max = MathF.Max(max, x.Read<TF>(start + i));
        return max;
    }
}
