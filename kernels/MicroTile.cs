using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// A thread's 4 x 4 block of a GEMM output tile in registers. With a T x T thread group and a block
/// tile of 4T x 4T, thread (tx, ty) owns rows ty + i*T and columns tx + j*T (i, j &lt; 4): strided
/// ownership keeps the shared-memory reads of a warp on distinct banks (or broadcast).
/// </summary>
public struct MicroTile
{
    /// <summary>Number of rows and columns each thread owns.</summary>
    public const int Size = 4;

    /// <summary>
    /// Row stride of both slabs in shared memory: 4T + 1. The slabs are stored k-major while the loads
    /// that fill them can have consecutive lanes walking k (row-major A; B stored [N, K], as Linear
    /// weights are), so with a stride of 4T (a multiple of 32) a warp's stores would land on one or
    /// two banks; the odd stride spreads them. The reads in <see cref="Accumulate(ArrayView{float}, int, ArrayView{float}, int, int, int, int, int)"/> are conflict-free
    /// for any stride.
    /// </summary>
    public static int SlabStride(int t) => Size * t + 1;

    /// <summary>Shared memory of one block in floats: the A slab and the B slab, [T, 4T + 1] each.</summary>
    public static int SharedFloats(int t) => 2 * t * SlabStride(t);

    private float _c00, _c01, _c02, _c03, _c10, _c11, _c12, _c13, _c20, _c21, _c22, _c23, _c30, _c31, _c32, _c33;

    /// <summary>
    /// Accumulates one K slab: aTile and bTile are [depth, 4T] (k-major, row stride <see cref="SlabStride"/>); adds
    /// sum_k aTile[k, ty + i T] * bTile[k, tx + j T] to element (i, j).
    /// </summary>
    public void Accumulate(ArrayView<float> aTile, ArrayView<float> bTile, int depth, int t, int tx, int ty) =>
        Accumulate(aTile, SlabStride(t), bTile, SlabStride(t), depth, t, tx, ty);

    /// <summary>
    /// <see cref="Accumulate(ArrayView{float}, ArrayView{float}, int, int, int, int)"/> with explicit row strides: adds
    /// sum_k aTile[k * aStride + ty + i T] * bTile[k * bStride + tx + j T] to element (i, j).
    /// </summary>
    public void Accumulate(ArrayView<float> aTile, int aStride, ArrayView<float> bTile, int bStride, int depth, int t, int tx, int ty)
    {
        for (int k = 0; k < depth; k++)
        {
            int ar = k * aStride + ty, bc = k * bStride + tx;
            float a0 = aTile[ar], a1 = aTile[ar + t], a2 = aTile[ar + 2 * t], a3 = aTile[ar + 3 * t];
            float b0 = bTile[bc], b1 = bTile[bc + t], b2 = bTile[bc + 2 * t], b3 = bTile[bc + 3 * t];
            _c00 += a0 * b0; _c01 += a0 * b1; _c02 += a0 * b2; _c03 += a0 * b3;
            _c10 += a1 * b0; _c11 += a1 * b1; _c12 += a1 * b2; _c13 += a1 * b3;
            _c20 += a2 * b0; _c21 += a2 * b1; _c22 += a2 * b2; _c23 += a2 * b3;
            _c30 += a3 * b0; _c31 += a3 * b1; _c32 += a3 * b2; _c33 += a3 * b3;
        }
    }

    /// <summary>Multiplies row i of the thread's block by <paramref name="r0"/> .. <paramref name="r3"/> (online-softmax rescaling).</summary>
    public void ScaleRows(float r0, float r1, float r2, float r3)
    {
        _c00 *= r0; _c01 *= r0; _c02 *= r0; _c03 *= r0;
        _c10 *= r1; _c11 *= r1; _c12 *= r1; _c13 *= r1;
        _c20 *= r2; _c21 *= r2; _c22 *= r2; _c23 *= r2;
        _c30 *= r3; _c31 *= r3; _c32 *= r3; _c33 *= r3;
    }

    /// <summary>Element (i, j) of the thread's block.</summary>
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
