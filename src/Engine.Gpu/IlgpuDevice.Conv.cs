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
        if (TryTensorCoreConv(x, weight, bias, output, stride, padding)) return;
        var p = new ConvParams
        {
            Cin = x.Dim(1), H = x.Dim(2), W = x.Dim(3), Cout = weight.Dim(0), Kh = weight.Dim(2), Kw = weight.Dim(3),
            Ho = output.Dim(2), Wo = output.Dim(3), Stride = stride, Padding = padding, HasBias = bias is null ? 0 : 1, Tile = _gemmTile,
        };
        if (bias is not null && bias.DType != DType.F32)
        {
            using var s = Stage();
            Conv2dCore(x, weight, s.In(bias), output, stride, padding);
            return;
        }
        var launch = new ConvLaunch(this, UseWideTile(p.Cout, p.Ho * p.Wo, x.Dim(0)), BiasView(bias), p, x.Dim(0));
        switch (x.DType)
        {
            case DType.F16: launch.WithX(new F16Weights(ViewF16(x)), weight, output); break;
            case DType.BF16: launch.WithX(new BF16Weights(ViewBF16(x)), weight, output); break;
            default: launch.WithX(new F32Weights(View(x)), weight, output); break;
        }
    }

    /// <summary>Picks the convolution instantiation for the storages of input, weight and output, one dtype at a time.</summary>
    private readonly struct ConvLaunch(IlgpuDevice device, bool wide, ArrayView<float> bias, ConvParams p, int batch)
    {
        public void WithX<TX>(TX x, Tensor w, Tensor o) where TX : struct, IWeightView
        {
            switch (w.DType)
            {
                case DType.F16: WithW(x, new F16Weights(ViewF16(w)), o); break;
                case DType.BF16: WithW(x, new BF16Weights(ViewBF16(w)), o); break;
                default: WithW(x, new F32Weights(View(w)), o); break;
            }
        }

        private void WithW<TX, TW>(TX x, TW w, Tensor o) where TX : struct, IWeightView where TW : struct, IWeightView
        {
            switch (o.DType)
            {
                case DType.F16: Run(x, w, new F16Output(ViewF16(o))); break;
                case DType.BF16: Run(x, w, new BF16Output(ViewBF16(o))); break;
                default: Run(x, w, new F32Output(View(o))); break;
            }
        }

        private void Run<TX, TW, TO>(TX x, TW w, TO o) where TX : struct, IWeightView where TW : struct, IWeightView where TO : struct, IOutputView
        {
            int t = p.Tile, size = wide ? MicroTile8.Size : MicroTile.Size, span = size * t;
            var grid = device.GridOf((p.Ho * p.Wo + span - 1) / span, (p.Cout + span - 1) / span, batch, "Conv2d");
            var config = new KernelConfig(grid, new Index3D(t, t, 1), SharedMemoryConfig.RequestDynamic<float>(TileLayout.SharedFloats(size, t)));
            if (wide) device._kernels.Conv2d<TX, TW, TO, MicroTile8>()(config, x, w, bias, o, p);
            else device._kernels.Conv2d<TX, TW, TO, MicroTile>()(config, x, w, bias, o, p);
        }
    }
}
