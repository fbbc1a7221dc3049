using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// Up to eight input views and their coefficients for <see cref="SamplerUpdateKernels.LinearCombination"/>;
/// unused slots repeat a valid view and are never read (Count says how many are live).
/// </summary>
public struct LinearTerms
{
    /// <summary>Input views.</summary>
    public ArrayView<float> X0, X1, X2, X3, X4, X5, X6, X7;
    /// <summary>Coefficients.</summary>
    public float C0, C1, C2, C3, C4, C5, C6, C7;
    /// <summary>Number of live terms, 1 to 8.</summary>
    public int Count;
}

/// <summary>The fused sampler update.</summary>
public static class SamplerUpdateKernels
{
    /// <summary>
    /// output[i] = sum_{k &lt; Count} C_k * X_k[i], accumulated in term order (c0 x0, then fused
    /// multiply-adds), each thread reading all its inputs before writing, so output may alias any
    /// input. Implicit launch, one thread per element: the whole sampler step is one kernel.
    /// </summary>
    public static void LinearCombination(Index1D i, ArrayView<float> output, LinearTerms t)
    {
        float acc = t.C0 * t.X0[i];
        if (t.Count > 1) acc = ScalarMath.MultiplyAdd(t.X1[i], t.C1, acc);
        if (t.Count > 2) acc = ScalarMath.MultiplyAdd(t.X2[i], t.C2, acc);
        if (t.Count > 3) acc = ScalarMath.MultiplyAdd(t.X3[i], t.C3, acc);
        if (t.Count > 4) acc = ScalarMath.MultiplyAdd(t.X4[i], t.C4, acc);
        if (t.Count > 5) acc = ScalarMath.MultiplyAdd(t.X5[i], t.C5, acc);
        if (t.Count > 6) acc = ScalarMath.MultiplyAdd(t.X6[i], t.C6, acc);
        if (t.Count > 7) acc = ScalarMath.MultiplyAdd(t.X7[i], t.C7, acc);
        output[i] = acc;
    }
}
