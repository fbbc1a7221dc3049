using Engine.Core;
using ILGPU;
using ILGPU.Algorithms;

namespace Engine.Kernels;

/// <summary>
/// The tensor-core instructions emulated on ILGPU's CPU accelerator (32-lane warps): each lane gathers
/// the operands the PTX ISA's fragment tables assign to it with warp shuffles and computes its part
/// of the result in fp32, so kernels built on <see cref="ITensorCore"/> run here as on CUDA.
/// </summary>
public struct EmulatedTensorCore : ITensorCore
{
    /// <inheritdoc />
    public readonly void MmaF16(ref MmaAcc c, FragA a, FragB b) => Mma(ref c, a, b, false);

    /// <inheritdoc />
    public readonly void MmaBF16(ref MmaAcc c, FragA a, FragB b) => Mma(ref c, a, b, true);

    // Lane (g, t) needs rows g and g + 8 of A, held by lanes 4g + s, and columns 2t and 2t + 1 of B,
    // held by lanes 4 (2t) + s and 4 (2t + 1) + s; lane s of a quad holds k = 2s, 2s + 1 (A's R0/R1,
    // B's R0) and k = 2s + 8, 2s + 9 (A's R2/R3, B's R1).
    private static void Mma(ref MmaAcc c, FragA a, FragB b, bool bf16)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        float c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        for (int s = 0; s < 4; s++)
        {
            // Whole fragments per shuffle: fewer warp rounds on the CPU accelerator.
            var ra = Warp.Shuffle(a, (g << 2) | s);
            var x = Warp.Shuffle(b, ((2 * t) << 2) | s);
            var y = Warp.Shuffle(b, ((2 * t + 1) << 2) | s);
            c0 += Dot2(ra.R0, x.R0, bf16) + Dot2(ra.R2, x.R1, bf16);
            c1 += Dot2(ra.R0, y.R0, bf16) + Dot2(ra.R2, y.R1, bf16);
            c2 += Dot2(ra.R1, x.R0, bf16) + Dot2(ra.R3, x.R1, bf16);
            c3 += Dot2(ra.R1, y.R0, bf16) + Dot2(ra.R3, y.R1, bf16);
        }
        c.C0 = c0; c.C1 = c1; c.C2 = c2; c.C3 = c3;
    }

    private static float Dot2(uint x, uint y, bool bf16) => Decode(x & 0xFFFF, bf16) * Decode(y & 0xFFFF, bf16) + Decode(x >> 16, bf16) * Decode(y >> 16, bf16);

    private static float Decode(uint bits, bool bf16) => bf16 ? Interop.IntAsFloat(bits << 16) : ScalarMath.FromHalfBits((ushort)bits);

    /// <inheritdoc />
    public readonly uint PackF16(float lo, float hi) => ScalarMath.ToHalfBits(lo) | ((uint)ScalarMath.ToHalfBits(hi) << 16);

    /// <inheritdoc />
    public readonly uint PackBF16(float lo, float hi) => ScalarMath.ToBFloat16(lo) | ((uint)ScalarMath.ToBFloat16(hi) << 16);

    /// <inheritdoc />
    public readonly float Exp2(float x)
    {
        float r = XMath.Exp2(x);
        return r < MinNormal ? 0f : r;
    }

    private const float MinNormal = 1.17549435E-38f;

    /// <inheritdoc />
    public readonly uint LdMatrixX1(ArrayView<ushort> shared, int rowOffset) => Ld(shared, rowOffset, 0, false);

    /// <inheritdoc />
    public readonly uint LdMatrixX1Trans(ArrayView<ushort> shared, int rowOffset) => Ld(shared, rowOffset, 0, true);

    /// <inheritdoc />
    public readonly void LdMatrixX2(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1)
    {
        r0 = Ld(shared, rowOffset, 0, false);
        r1 = Ld(shared, rowOffset, 1, false);
    }

    /// <inheritdoc />
    public readonly void LdMatrixX2Trans(ArrayView<ushort> shared, int rowOffset, out uint r0, out uint r1)
    {
        r0 = Ld(shared, rowOffset, 0, true);
        r1 = Ld(shared, rowOffset, 1, true);
    }

    /// <inheritdoc />
    public readonly FragA LdMatrixX4(ArrayView<ushort> shared, int rowOffset) => new()
    {
        R0 = Ld(shared, rowOffset, 0, false), R1 = Ld(shared, rowOffset, 1, false),
        R2 = Ld(shared, rowOffset, 2, false), R3 = Ld(shared, rowOffset, 3, false),
    };

    /// <inheritdoc />
    public readonly FragA LdMatrixX4Trans(ArrayView<ushort> shared, int rowOffset) => new()
    {
        R0 = Ld(shared, rowOffset, 0, true), R1 = Ld(shared, rowOffset, 1, true),
        R2 = Ld(shared, rowOffset, 2, true), R3 = Ld(shared, rowOffset, 3, true),
    };

    // Row r of matrix i comes from lane 8i + r. Without .trans lane l reads row l / 4 at columns
    // 2 (l % 4), +1; with .trans column l / 4 of rows 2 (l % 4) and 2 (l % 4) + 1.
    private static uint Ld(ArrayView<ushort> shared, int rowOffset, int matrix, bool trans)
    {
        int lane = Warp.LaneIdx, q = lane & 3, r = lane >> 2;
        if (!trans)
        {
            int row = Warp.Shuffle(rowOffset, 8 * matrix + r);
            return shared[row + 2 * q] | ((uint)shared[row + 2 * q + 1] << 16);
        }
        int row0 = Warp.Shuffle(rowOffset, 8 * matrix + 2 * q), row1 = Warp.Shuffle(rowOffset, 8 * matrix + 2 * q + 1);
        return shared[row0 + r] | ((uint)shared[row1 + r] << 16);
    }

    /// <inheritdoc />
    public readonly void CpAsync16(ArrayView<ushort> shared, int dstOffset, GlobalHalf src, long srcOffset, bool valid)
    {
        for (int e = 0; e < 8; e++)
            shared[dstOffset + e] = valid ? Interop.FloatAsInt(src.View[srcOffset + e]) : (ushort)0;
    }

    /// <inheritdoc />
    public readonly void CpAsyncCommit() { }

    /// <inheritdoc />
    public readonly void CpAsyncWaitAll() { }

    /// <inheritdoc />
    public readonly void CpAsyncWaitPrior() { }

    /// <inheritdoc />
    public readonly FragA Load128(GlobalHalf src, long offset) => new()
    {
        R0 = Pair(src, offset), R1 = Pair(src, offset + 2), R2 = Pair(src, offset + 4), R3 = Pair(src, offset + 6),
    };

    private static uint Pair(GlobalHalf src, long i) => Interop.FloatAsInt(src.View[i]) | ((uint)Interop.FloatAsInt(src.View[i + 1]) << 16);
}
