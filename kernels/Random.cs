using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>Noise generation.</summary>
public static class RandomKernels
{
    /// <summary>
    /// Standard normal noise: index over output [samples, perSample]; element e of row s is
    /// <see cref="Philox.Normal"/>(seed, firstSample + s, step, e), the same function the CPU device
    /// calls, so both draw identical noise. Implicit launch, one thread per element.
    /// </summary>
    public static void RandomNormal(Index1D i, ArrayView<float> output, ulong seed, int firstSample, int step, int perSample)
    {
        int s = i / perSample, e = i - s * perSample;
        output[i] = Philox.Normal(seed, (uint)(firstSample + s), (uint)step, (uint)e);
    }
}
