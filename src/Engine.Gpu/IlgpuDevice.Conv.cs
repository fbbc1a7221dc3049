using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        if (output.Length == 0) return;
        var p = new ConvParams
        {
            Cin = x.Dim(1), H = x.Dim(2), W = x.Dim(3), Cout = weight.Dim(0), Kh = weight.Dim(2), Kw = weight.Dim(3),
            Ho = output.Dim(2), Wo = output.Dim(3), Stride = stride, Padding = padding, HasBias = bias is null ? 0 : 1, Tile = _gemmTile,
        };
        var o = View(output);
        var ob = bias is null ? o : View(bias);
        bool wide = UseWideTile(p.Cout, p.Ho * p.Wo, x.Dim(0));
        switch (weight.DType)
        {
            case DType.F16: LaunchConv(wide, new F16Weights(ViewF16(weight)), View(x), ob, o, p, x.Dim(0)); break;
            case DType.BF16: LaunchConv(wide, new BF16Weights(ViewBF16(weight)), View(x), ob, o, p, x.Dim(0)); break;
            default: LaunchConv(wide, new F32Weights(View(weight)), View(x), ob, o, p, x.Dim(0)); break;
        }
    }

    private void LaunchConv<TW>(bool wide, TW w, ArrayView<float> x, ArrayView<float> bias, ArrayView<float> o, ConvParams p, int batch)
        where TW : struct, IWeightView
    {
        int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
        var grid = GridOf((p.Ho * p.Wo + span - 1) / span, (p.Cout + span - 1) / span, batch, "Conv2d");
        var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
        if (wide) _kernels.Conv2d<TW, MicroTile8>()(config, x, w, bias, o, p);
        else _kernels.Conv2d<TW, MicroTile>()(config, x, w, bias, o, p);
    }
}
