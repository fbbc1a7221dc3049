using Engine.Core;
using Engine.Kernels;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void UpsampleNearest2xCore(Tensor x, Tensor output)
    {
        if (output.Length == 0) return;
        if (x.DType != DType.F32)
        {
            _kernels.UpsampleNearest2xHalf(Extent(output.Length, "UpsampleNearest2x"), HalfBits(x), HalfBits(output), x.Dim(2), x.Dim(3));
            return;
        }
        _kernels.UpsampleNearest2x(Extent(output.Length, "UpsampleNearest2x"), View(x), View(output), x.Dim(2), x.Dim(3));
    }

    /// <inheritdoc />
    protected override void GatherRowsCore(Tensor table, Tensor indices, Tensor output)
    {
        if (output.Length == 0) return;
        int n = Extent(output.Length, "GatherRows"), rows = table.Dim(0), dim = table.Dim(1);
        switch (table.DType)
        {
            case DType.F16: GatherRows(new F16Weights(ViewF16(table)), indices, output, n, rows, dim); break;
            case DType.BF16: GatherRows(new BF16Weights(ViewBF16(table)), indices, output, n, rows, dim); break;
            default: GatherRows(new F32Weights(View(table)), indices, output, n, rows, dim); break;
        }
    }

    private void GatherRows<TW>(TW table, Tensor indices, Tensor output, int n, int rows, int dim) where TW : struct, IWeightView
    {
        switch (output.DType)
        {
            case DType.F16: _kernels.GatherRows<TW, F16Output>()(n, table, View(indices), new F16Output(ViewF16(output)), rows, dim); break;
            case DType.BF16: _kernels.GatherRows<TW, BF16Output>()(n, table, View(indices), new BF16Output(ViewBF16(output)), rows, dim); break;
            default: _kernels.GatherRows<TW, F32Output>()(n, table, View(indices), new F32Output(View(output)), rows, dim); break;
        }
    }

    /// <inheritdoc />
    protected override void ConcatChannelsCore(Tensor a, Tensor b, Tensor output)
    {
        if (output.Length == 0) return;
        int n = a.Dim(0);
        if (a.DType != DType.F32)
            _kernels.ConcatChannelsHalf(Extent(output.Length, "ConcatChannels"), HalfBits(a), HalfBits(b), HalfBits(output), (int)(a.Length / n), (int)(b.Length / n));
        else
            _kernels.ConcatChannels(Extent(output.Length, "ConcatChannels"), View(a), View(b), View(output), (int)(a.Length / n), (int)(b.Length / n));
    }

    /// <inheritdoc />
    protected override void SliceChannelsCore(Tensor x, int start, Tensor output)
    {
        if (output.Length == 0) return;
        int n = x.Dim(0);
        int inner = (int)(output.Length / ((long)n * output.Dim(1)));
        if (x.DType != DType.F32)
        {
            _kernels.SliceChannelsHalf(Extent(output.Length, "SliceChannels"), HalfBits(x), HalfBits(output), x.Dim(1) * inner, output.Dim(1) * inner, start * inner);
            return;
        }
        _kernels.SliceChannels(Extent(output.Length, "SliceChannels"), View(x), View(output), x.Dim(1) * inner, output.Dim(1) * inner, start * inner);
    }

    /// <inheritdoc />
    protected override void CopyWindowCore(Tensor x, int srcY, int srcX, Tensor output, int dstY, int dstX, int height, int width)
    {
        long count = (long)x.Dim(0) * x.Dim(1) * height * width;
        var p = new WindowParams
        {
            SrcH = x.Dim(2), SrcW = x.Dim(3), DstH = output.Dim(2), DstW = output.Dim(3),
            SrcY = srcY, SrcX = srcX, DstY = dstY, DstX = dstX, Height = height, Width = width,
        };
        if (x.DType != DType.F32)
        {
            _kernels.CopyWindowHalf(Extent(count, "CopyWindow"), HalfBits(x), HalfBits(output), p);
            return;
        }
        _kernels.CopyWindow(Extent(count, "CopyWindow"), View(x), View(output), p);
    }

    /// <inheritdoc />
    protected override void TransposeCore(Tensor x, Tensor output)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
            _kernels.TransposeHalf(Extent(x.Length, "Transpose"), HalfBits(x), HalfBits(output), x.Dim(1), x.Dim(2));
        else
            _kernels.Transpose(Extent(x.Length, "Transpose"), View(x), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void PatchifyCore(Tensor image, Tensor tokens, int patch, bool unpatchify)
    {
        if (tokens.Length == 0) return;
        var p = new PatchParams { C = image.Dim(1), H = image.Dim(2), W = image.Dim(3), Patch = patch, Unpatchify = unpatchify ? 1 : 0 };
        if (image.DType != DType.F32)
        {
            _kernels.PatchifyHalf(Extent(tokens.Length, unpatchify ? "Unpatchify" : "Patchify"), HalfBits(image), HalfBits(tokens), p);
            return;
        }
        _kernels.Patchify(Extent(tokens.Length, unpatchify ? "Unpatchify" : "Patchify"), View(image), View(tokens), p);
    }
}
