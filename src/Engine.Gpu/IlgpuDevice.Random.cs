using Engine.Core;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void RandomNormalCore(Tensor output, ulong seed, int firstSampleIndex, int step)
    {
        if (output.Length == 0) return;
        int perSample = (int)(output.Length / output.Dim(0));
        _kernels.RandomNormal(Extent(output.Length, "RandomNormal"), View(output), seed, firstSampleIndex, step, perSample);
    }
}
