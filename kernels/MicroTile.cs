using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// A thread's block of a GEMM output tile held in registers. With a T x T thread group and a block tile
/// of (Size T) x (Size T), thread (tx, ty) owns rows ty + i T and columns tx + j T (i, j &lt; Size):
/// strided ownership keeps the shared-memory reads of a warp on distinct banks (or broadcast). The
/// GEMM and convolution kernels are generic over it: <see cref="MicroTile"/> (4 x 4) for small
/// products, <see cref="MicroTile8"/> (8 x 8, twice the multiply-adds per shared-memory load) for
/// products large enough to fill the device with 8T x 8T blocks.
/// </summary>
public interface IMicroTile
{
    /// <summary>Rows and columns each thread owns.</summary>
    int Size { get; }

    /// <summary>
    /// Accumulates one K slab: adds sum_k aTile[k * aStride + ty + i T] * bTile[k * bStride + tx + j T]
    /// to element (i, j), for k &lt; <paramref name="depth"/>.
    /// </summary>
    void Accumulate(ArrayView<float> aTile, int aStride, ArrayView<float> bTile, int bStride, int depth, int t, int tx, int ty);

    /// <summary>Element (i, j) of the thread's block.</summary>
    float Get(int i, int j);
}

/// <summary>Shared-memory layout of the GEMM and convolution kernels for a micro-tile size.</summary>
public static class TileLayout
{
    /// <summary>
    /// Row stride of both slabs in shared memory: Size T + 1. The slabs are stored k-major while the
    /// loads that fill them can have consecutive lanes walking k (row-major A; B stored [N, K], as
    /// Linear weights are), so with a stride that is a multiple of 32 a warp's stores would land on one
    /// or two banks; the odd stride spreads them. The micro-tile reads are conflict-free for any stride.
    /// </summary>
    public static int SlabStride(int size, int t) => size * t + 1;

    /// <summary>Shared memory of one block in floats: the A slab and the B slab, [T, Size T + 1] each.</summary>
    public static int SharedFloats(int size, int t) => 2 * t * SlabStride(size, t);
}

/// <summary>A 4 x 4 <see cref="IMicroTile"/>; also the output block of the register-tiled attention.</summary>
public struct MicroTile : IMicroTile
{
    /// <summary>Number of rows and columns each thread owns.</summary>
    public const int Size = 4;

    /// <inheritdoc />
    readonly int IMicroTile.Size => Size;

    private float _c00, _c01, _c02, _c03, _c10, _c11, _c12, _c13, _c20, _c21, _c22, _c23, _c30, _c31, _c32, _c33;

    /// <inheritdoc />
    public void Accumulate(ArrayView<float> aTile, int aStride, ArrayView<float> bTile, int bStride, int depth, int t, int tx, int ty)
    {
        for (int k = 0; k < depth; k++)
        {
            int ar = k * aStride + ty, bc = k * bStride + tx;
            Fma(aTile[ar], aTile[ar + t], aTile[ar + 2 * t], aTile[ar + 3 * t], bTile[bc], bTile[bc + t], bTile[bc + 2 * t], bTile[bc + 3 * t]);
        }
    }

    /// <summary>Adds the outer product (a0..a3) x (b0..b3).</summary>
    public void Fma(float a0, float a1, float a2, float a3, float b0, float b1, float b2, float b3)
    {
        _c00 += a0 * b0; _c01 += a0 * b1; _c02 += a0 * b2; _c03 += a0 * b3;
        _c10 += a1 * b0; _c11 += a1 * b1; _c12 += a1 * b2; _c13 += a1 * b3;
        _c20 += a2 * b0; _c21 += a2 * b1; _c22 += a2 * b2; _c23 += a2 * b3;
        _c30 += a3 * b0; _c31 += a3 * b1; _c32 += a3 * b2; _c33 += a3 * b3;
    }

    /// <summary>Multiplies row i of the thread's block by <paramref name="r0"/> .. <paramref name="r3"/> (online-softmax rescaling).</summary>
    public void ScaleRows(float r0, float r1, float r2, float r3)
    {
        _c00 *= r0; _c01 *= r0; _c02 *= r0; _c03 *= r0;
        _c10 *= r1; _c11 *= r1; _c12 *= r1; _c13 *= r1;
        _c20 *= r2; _c21 *= r2; _c22 *= r2; _c23 *= r2;
        _c30 *= r3; _c31 *= r3; _c32 *= r3; _c33 *= r3;
    }

    /// <inheritdoc />
    public readonly float Get(int i, int j)
    {
        int e = i * Size + j;
        return e switch
        {
            0 => _c00, 1 => _c01, 2 => _c02, 3 => _c03,
            4 => _c10, 5 => _c11, 6 => _c12, 7 => _c13,
            8 => _c20, 9 => _c21, 10 => _c22, 11 => _c23,
            12 => _c30, 13 => _c31, 14 => _c32, _ => _c33,
        };
    }
}

/// <summary>
/// An 8 x 8 <see cref="IMicroTile"/> as four 4 x 4 quadrants: rows ty + i T (i &lt; 8) and columns
/// tx + j T (j &lt; 8) of an 8T x 8T block tile. Per depth step it loads 16 values for 64
/// multiply-adds (the 4 x 4 tile: 8 for 16).
/// </summary>
public struct MicroTile8 : IMicroTile
{
    /// <summary>Number of rows and columns each thread owns.</summary>
    public const int Size = 8;

    private MicroTile _q00, _q01, _q10, _q11;

    /// <inheritdoc />
    readonly int IMicroTile.Size => Size;

    /// <inheritdoc />
    public void Accumulate(ArrayView<float> aTile, int aStride, ArrayView<float> bTile, int bStride, int depth, int t, int tx, int ty)
    {
        for (int k = 0; k < depth; k++)
        {
            int ar = k * aStride + ty, bc = k * bStride + tx;
            float a0 = aTile[ar], a1 = aTile[ar + t], a2 = aTile[ar + 2 * t], a3 = aTile[ar + 3 * t];
            float a4 = aTile[ar + 4 * t], a5 = aTile[ar + 5 * t], a6 = aTile[ar + 6 * t], a7 = aTile[ar + 7 * t];
            float b0 = bTile[bc], b1 = bTile[bc + t], b2 = bTile[bc + 2 * t], b3 = bTile[bc + 3 * t];
            float b4 = bTile[bc + 4 * t], b5 = bTile[bc + 5 * t], b6 = bTile[bc + 6 * t], b7 = bTile[bc + 7 * t];
            _q00.Fma(a0, a1, a2, a3, b0, b1, b2, b3);
            _q01.Fma(a0, a1, a2, a3, b4, b5, b6, b7);
            _q10.Fma(a4, a5, a6, a7, b0, b1, b2, b3);
            _q11.Fma(a4, a5, a6, a7, b4, b5, b6, b7);
        }
    }

    /// <inheritdoc />
    public readonly float Get(int i, int j) =>
        i < 4 ? (j < 4 ? _q00.Get(i, j) : _q01.Get(i, j - 4)) : (j < 4 ? _q10.Get(i - 4, j) : _q11.Get(i - 4, j - 4));
}
