using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    /// <inheritdoc />
    protected override void RandomNormalCore(Tensor output, ulong seed, int firstSampleIndex, int step)
    {
        int samples = output.Dim(0), perSample = (int)(output.Length / Math.Max(1, samples));
        var (oa, oo) = Raw(output);
        Parallel.For(0, samples, Parallelism, s =>
        {
            int baseIdx = oo + s * perSample;
            for (int e = 0; e < perSample; e++)
                oa[baseIdx + e] = Philox.Normal(seed, (uint)(firstSampleIndex + s), (uint)step, (uint)e);
        });
    }
}
