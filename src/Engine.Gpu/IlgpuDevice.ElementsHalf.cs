using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

/// <summary>
/// Element-wise ops (Activate, Geglu, Affine, Modulate, GatedAdd) and data movement (UpsampleNearest2x, SliceChannels,
/// CopyWindow, Patchify / Unpatchify) on F16 / BF16 activations without float32 stand-ins: the activation operands and
/// the output share one storage, read through the any-storage kernels (each value widened exactly, the result rounded
/// once: the float32 kernel's result on the same values) or moved as their 16 bits. The adaLN vectors of Modulate and
/// GatedAdd ([B, D], a few thousand values) are read as float32, widened first when they are half. Mixed storages
/// still stage.
/// </summary>
public sealed partial class IlgpuDevice
{
    /// <summary>An any-storage element-wise kernel launch, given the views of up to two activation operands and the output.</summary>
    private interface IElementLaunch
    {
        void Run<TX, TO>(TX x, TX y, TO o) where TX : struct, IWeightView where TO : struct, IOutputView;
    }

    /// <summary>
    /// Runs <paramref name="launch"/> on the views of <paramref name="x"/>, <paramref name="y"/> (or x again) and
    /// <paramref name="output"/>, which share one half storage.
    /// </summary>
    private static void LaunchHalf<TL>(Tensor x, Tensor? y, Tensor output, TL launch) where TL : IElementLaunch
    {
        var second = y ?? x;
        if (x.DType == DType.F16) launch.Run(new F16Weights(ViewF16(x)), new F16Weights(ViewF16(second)), new F16Output(ViewF16(output)));
        else launch.Run(new BF16Weights(ViewBF16(x)), new BF16Weights(ViewBF16(second)), new BF16Output(ViewBF16(output)));
    }

    private readonly struct ActivateLaunch(IlgpuDevice device, int n, Activation kind) : IElementLaunch
    {
        public void Run<TX, TO>(TX x, TX y, TO o) where TX : struct, IWeightView where TO : struct, IOutputView =>
            device._kernels.ActivateAny<TX, TO>()(n, x, o, kind);
    }

    private readonly struct GegluLaunch(IlgpuDevice device, int n, int d) : IElementLaunch
    {
        public void Run<TX, TO>(TX x, TX y, TO o) where TX : struct, IWeightView where TO : struct, IOutputView =>
            device._kernels.GegluAny<TX, TO>()(n, x, o, d);
    }

    private readonly struct AffineLaunch(IlgpuDevice device, int n, float alpha, float beta) : IElementLaunch
    {
        public void Run<TX, TO>(TX x, TX y, TO o) where TX : struct, IWeightView where TO : struct, IOutputView =>
            device._kernels.AffineAny<TX, TO>()(n, x, o, alpha, beta);
    }

    private readonly struct ModulateLaunch(IlgpuDevice device, int n, ArrayView<float> shift, ArrayView<float> scale, int l, int d) : IElementLaunch
    {
        public void Run<TX, TO>(TX x, TX y, TO o) where TX : struct, IWeightView where TO : struct, IOutputView =>
            device._kernels.ModulateAny<TX, TO>()(n, x, shift, scale, o, l, d);
    }

    private readonly struct GatedAddLaunch(IlgpuDevice device, int n, ArrayView<float> gate, int l, int d) : IElementLaunch
    {
        public void Run<TX, TO>(TX residual, TX x, TO o) where TX : struct, IWeightView where TO : struct, IOutputView =>
            device._kernels.GatedAddAny<TX, TO>()(n, residual, x, gate, o, l, d);
    }
}
