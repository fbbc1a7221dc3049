using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

internal static unsafe partial class DirectConv
{
    /// <summary>
    /// Packs the weights as [input-channel block][output-channel tile][input channel of the block][tap][4 output
    /// channels]: the order of the kernel's reads, one sequential stream per block. Output channels past Cout are zero.
    /// The weights are float32 (<paramref name="w"/>) or half (<paramref name="w16"/>, the other null): half rows are
    /// widened into per-thread scratch on the way, so no widened copy of the whole tensor is written and read back.
    /// </summary>
    private static void PackWeights(float* w, Half* w16, float* packed, in Shape s, int kc, ParallelOptions? options)
    {
        int taps = s.Kh * s.Kw, cin = s.Cin, cout = s.Cout, coBlocks = (cout + CoTile - 1) / CoTile;
        long row = (long)cin * taps;
        nint pw = (nint)w, pw16 = (nint)w16, pp = (nint)packed;
        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        void Block(int cb)
        {
            // The tile's 4 weight rows: the tensor's own float32 rows, or (half weights; the last, partial tile)
            // widened copies and zero rows in scratch.
            int count = Math.Min(CoTile, cout - cb * CoTile);
            bool scratch = count < CoTile || pw16 != 0;
            float* rows = scratch ? (_rows ??= new AlignedBuffer()).Ensure(CoTile * row) : null;
            float* r0 = null, r1 = null, r2 = null, r3 = null;
            for (int c = 0; c < CoTile; c++)
            {
                long co = cb * CoTile + c;
                float* r;
                if (!scratch) r = (float*)pw + co * row;
                else
                {
                    r = rows + c * row;
                    var dst = new Span<float>(r, (int)row);
                    if (c >= count) dst.Clear();
                    else if (pw16 != 0) TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)pw16 + co * row, (int)row), dst);
                    else new ReadOnlySpan<float>((float*)pw + co * row, (int)row).CopyTo(dst);
                }
                if (c == 0) r0 = r; else if (c == 1) r1 = r; else if (c == 2) r2 = r; else r3 = r;
            }
            for (int ci0 = 0; ci0 < cin; ci0 += kc)
            {
                int n = Math.Min(kc, cin - ci0) * taps;
                long from = (long)ci0 * taps;
                float* dst = (float*)pp + from * CoTile * coBlocks + (long)cb * n * CoTile;
                int i = 0;
                // 4 x 4 transposes: 4 consecutive weights of each channel become 4 groups of the 4 channels.
                for (; i + 4 <= n; i += 4, dst += 16)
                {
                    var a = Vector128.Load(r0 + from + i); var b = Vector128.Load(r1 + from + i);
                    var c = Vector128.Load(r2 + from + i); var d = Vector128.Load(r3 + from + i);
                    var ab0 = Sse.UnpackLow(a, b); var cd0 = Sse.UnpackLow(c, d);
                    var ab1 = Sse.UnpackHigh(a, b); var cd1 = Sse.UnpackHigh(c, d);
                    Sse.MoveLowToHigh(ab0, cd0).Store(dst); Sse.MoveHighToLow(cd0, ab0).Store(dst + 4);
                    Sse.MoveLowToHigh(ab1, cd1).Store(dst + 8); Sse.MoveHighToLow(cd1, ab1).Store(dst + 12);
                }
                for (; i < n; i++, dst += 4)
                {
                    dst[0] = r0[from + i]; dst[1] = r1[from + i]; dst[2] = r2[from + i]; dst[3] = r3[from + i];
                }
            }
        }
        if (options is null || coBlocks < 2) for (int cb = 0; cb < coBlocks; cb++) Block(cb);
        else Parallel.For(0, coBlocks, options, Block);
    }
}
