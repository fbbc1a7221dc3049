using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Engine.Core;

namespace Engine.Cpu;

// The packers of Gemm: operands copied into the micro-kernel's panel layout, transposes absorbed by
// 8 x 8 register transposes, half-precision weights widened on the way (never a whole float32 copy).
internal static unsafe partial class Gemm
{
    /// <summary>
    /// Packs rows [ip*MR, ip*MR + MR) of op(A) over all of K as dst[p * MR + r] = alpha * A(i, p), so
    /// the slice of depths [pc, pc + kc) starts at dst + pc * MR.
    /// </summary>
    private static void PackA(in GemmProblem g, int ip, float* dst)
    {
        int i0 = ip * MR, rows = Math.Min(MR, g.M - i0);
        if (g.TypeA != DType.F32)
        {
            if (g.CsA == 1)
            {
                if (rows == 8 && MR == 8 && Avx2.IsSupported)
                {
                    PackHalfBlocks(g.A, g.TypeA, (long)i0 * g.RsA, g.RsA, rows, g.K, dst, MR, g.Alpha);
                    return;
                }
                // Rows contiguous in depth: widen the panel's rows into the stage, then pack them as float32.
                float* stage = (_scratch ??= new Scratch()).EnsureStage((long)rows * g.K);
                for (int r = 0; r < rows; r++) Widen(g.A, g.TypeA, (long)(i0 + r) * g.RsA, stage + (long)r * g.K, g.K);
                PackAF32(g.K, (nint)(stage - (long)i0 * g.K), g.K, 1, g.Alpha, i0, rows, dst);
                return;
            }
            for (int p = 0; p < g.K; p++)
                for (int r = 0; r < MR; r++)
                    dst[p * MR + r] = r < rows ? g.Alpha * Element(g.A, g.TypeA, (long)(i0 + r) * g.RsA + (long)p * g.CsA) : 0f;
            return;
        }
        PackAF32(g.K, g.A, g.RsA, g.CsA, g.Alpha, i0, rows, dst);
    }

    private static void PackAF32(int k, nint aBase, int rsA, int csA, float alpha, int i0, int rows, float* dst)
    {
        float* a = (float*)aBase;
        int mr = MR;
        if (rsA == 1)
        {
            // Transposed storage: the MR rows of one depth are contiguous.
            if (rows == 8 && mr == 8 && Vector256.IsHardwareAccelerated)
            {
                var scale = Vector256.Create(alpha);
                for (int p = 0; p < k; p++) (Vector256.Load(a + (long)p * csA + i0) * scale).Store(dst + p * mr);
                return;
            }
            for (int p = 0; p < k; p++)
            {
                float* src = a + (long)p * csA + i0;
                float* d = dst + p * mr;
                int r = 0;
                for (; r < rows; r++) d[r] = alpha * src[r];
                for (; r < mr; r++) d[r] = 0f;
            }
            return;
        }
        int p0 = 0;
        if (csA == 1 && rows == 8 && mr == 8 && Avx.IsSupported)
        {
            // Row-major A: 8 x 8 blocks transposed in registers, eight depths per step.
            var scale = Vector256.Create(alpha);
            for (; p0 + 8 <= k; p0 += 8)
                Transpose8x8.Run(a + (long)i0 * rsA + p0, rsA, dst + p0 * mr, mr, scale);
        }
        for (int r = 0; r < rows; r++)
        {
            float* src = a + (long)(i0 + r) * rsA;
            if (csA == 1) for (int p = p0; p < k; p++) dst[p * mr + r] = alpha * src[p];
            else for (int p = p0; p < k; p++) dst[p * mr + r] = alpha * src[(long)p * csA];
        }
        for (int r = rows; r < mr; r++)
            for (int p = p0; p < k; p++) dst[p * mr + r] = 0f;
    }

    /// <summary>
    /// Packs columns [jp*NR, jp*NR + NR) of op(B) over all of K as dst[p * NR + c] = B(p, j); the
    /// slice of depths [pc, pc + kc) starts at dst + pc * NR.
    /// </summary>
    private static void PackB(in GemmProblem g, int jp, float* dst)
    {
        int j0 = jp * NR, cols = Math.Min(NR, g.N - j0), nr = NR;
        if (g.TypeB != DType.F32)
        {
            if (g.RsB == 1)
            {
                if (cols == nr && Avx2.IsSupported)
                {
                    PackHalfBlocks(g.B, g.TypeB, (long)j0 * g.CsB, g.CsB, cols, g.K, dst, nr, 1f);
                    return;
                }
                // Columns contiguous in depth (a Linear weight [out, in]): widen the panel's columns, then pack them.
                float* stage = (_scratch ??= new Scratch()).EnsureStage((long)cols * g.K);
                for (int c = 0; c < cols; c++) Widen(g.B, g.TypeB, (long)(j0 + c) * g.CsB, stage + (long)c * g.K, g.K);
                PackBF32(g.K, (nint)(stage - (long)j0 * g.K), 1, g.K, j0, cols, dst);
                return;
            }
            if (g.CsB == 1)
            {
                // Row-major: each depth's run of columns widens straight into the panel.
                for (int p = 0; p < g.K; p++)
                {
                    float* d = dst + (long)p * nr;
                    Widen(g.B, g.TypeB, (long)p * g.RsB + j0, d, cols);
                    for (int c = cols; c < nr; c++) d[c] = 0f;
                }
                return;
            }
            for (int p = 0; p < g.K; p++)
                for (int c = 0; c < nr; c++)
                    dst[(long)p * nr + c] = c < cols ? Element(g.B, g.TypeB, (long)p * g.RsB + (long)(j0 + c) * g.CsB) : 0f;
            return;
        }
        PackBF32(g.K, g.B, g.RsB, g.CsB, j0, cols, dst);
    }

    private static void PackBF32(int k, nint bBase, int rsB, int csB, int j0, int cols, float* dst)
    {
        float* b = (float*)bBase;
        int nr = NR;
        if (csB == 1)
        {
            // Row-major B: each depth is a contiguous run of columns.
            for (int p = 0; p < k; p++)
            {
                float* src = b + (long)p * rsB + j0;
                float* d = dst + p * nr;
                Buffer.MemoryCopy(src, d, (long)nr * sizeof(float), (long)cols * sizeof(float));
                for (int c = cols; c < nr; c++) d[c] = 0f;
            }
            return;
        }
        int p0 = 0;
        if (rsB == 1 && cols == nr && Avx.IsSupported)
        {
            // Transposed B (e.g. Linear weights [out, in]): 8 columns x 8 depths transposed in registers.
            for (; p0 + 8 <= k; p0 += 8)
                for (int c = 0; c < nr; c += 8)
                    Transpose8x8.Run(b + (long)(j0 + c) * csB + p0, csB, dst + p0 * nr + c, nr);
        }
        // The rest: read each column's contiguous depth run and scatter.
        for (int c = 0; c < cols; c++)
        {
            float* src = b + (long)(j0 + c) * csB;
            if (rsB == 1) for (int p = p0; p < k; p++) dst[p * nr + c] = src[p];
            else for (int p = p0; p < k; p++) dst[p * nr + c] = src[(long)p * rsB];
        }
        for (int c = cols; c < nr; c++)
            for (int p = p0; p < k; p++) dst[p * nr + c] = 0f;
    }

    /// <summary>
    /// Packs <paramref name="lines"/> (a multiple of 8) F16 / BF16 lines contiguous in depth, the first at element
    /// <paramref name="start"/> and <paramref name="stride"/> elements apart, as dst[p * <paramref name="width"/> + l] =
    /// scale * line l at depth p: 8 lines x 8 depths widened and transposed in registers per step
    /// (<see cref="Transpose8x8.RunHalf"/>), the depth remainder one element at a time. Same values as widening the
    /// lines into a float32 stage and packing that, without the stage's round trip through L2.
    /// </summary>
    private static void PackHalfBlocks(nint src, DType type, long start, int stride, int lines, int k, float* dst, int width, float scale)
    {
        ushort* s = (ushort*)src + start;
        bool bf16 = type == DType.BF16;
        var vscale = Vector256.Create(scale);
        int p0 = 0;
        for (; p0 + 8 <= k; p0 += 8)
            for (int l = 0; l < lines; l += 8)
                Transpose8x8.RunHalf(s + (long)l * stride + p0, stride, bf16, dst + (long)p0 * width + l, width, vscale);
        for (int l = 0; l < lines; l++)
            for (int p = p0; p < k; p++) dst[(long)p * width + l] = scale * Element(src, type, start + (long)l * stride + p);
    }

    /// <summary>Widens <paramref name="count"/> contiguous F16 / BF16 elements starting at element <paramref name="start"/> of <paramref name="src"/>.</summary>
    private static void Widen(nint src, DType type, long start, float* dst, int count)
    {
        if (type == DType.F16)
        {
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)src + start, count), new Span<float>(dst, count));
            return;
        }
        // bfloat16 is the upper half of a binary32: widen to 32 bits and shift.
        ushort* s = (ushort*)src + start;
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
            for (; i + 16 <= count; i += 16)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Load(s + i));
                Vector256.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                Vector256.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 8);
            }
        for (; i < count; i++) dst[i] = DTypeExtensions.BFloat16ToSingle(s[i]);
    }

    /// <summary>One element of a float32, F16 or BF16 operand.</summary>
    private static float Element(nint src, DType type, long index) => type switch
    {
        DType.F32 => ((float*)src)[index],
        DType.F16 => (float)((Half*)src)[index],
        _ => DTypeExtensions.BFloat16ToSingle(((ushort*)src)[index]),
    };

    /// <summary>Bytes per element of an operand of this type.</summary>
    internal static int ElementSize(DType type) => type == DType.F32 ? sizeof(float) : sizeof(ushort);
}
