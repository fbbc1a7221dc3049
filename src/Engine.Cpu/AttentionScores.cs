using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Engine.Cpu;

/// <summary>
/// The AVX-512 score pass of the CPU attention: one S^T panel (a key tile x 32 queries) computed 8 keys at a
/// time in registers and turned into P^T = 2^(S^T - m) before it is stored, so the scores are written once and
/// never re-read for the max and the exponentials (the two extra passes over the panel cost as much as the
/// exponentials themselves).
/// <para>
/// m is a per-query reference, not the exact running max: it is raised only when a score exceeds it by more
/// than <see cref="RaiseThreshold"/> (the first scores of a block always raise it from -inf). Between raises
/// the probabilities are at most 2^RaiseThreshold, far from overflow, and the normalisation by the sum makes
/// the result independent of m. A raise multiplies the panel's rows already stored, the sums and the factor
/// for the output accumulator by 2^(m_old - m_new); with real scores it happens in the first few key groups
/// of a block and rarely after.
/// </para>
/// </summary>
internal static unsafe class AttentionScores
{
    /// <summary>Whether this CPU runs the fused pass (it needs the 8-row x 32-column panels of the AVX-512 GEMM).</summary>
    public static bool Supported => Avx512F.IsSupported && Avx512DQ.IsSupported && Gemm.PanelRows == 8 && Gemm.PanelCols == 32;

    /// <summary>
    /// How far (in log2 units) a score may exceed the reference max before the reference is raised. 2, not more: with
    /// 8 (probabilities up to 256) the fmnist UNet's samples drifted 1.05e-5 apart between batch sizes 1 and 3 (the
    /// batch-invariance test allows 1e-5; 6.3e-6 with 2, as with 0), at no measured cost in speed (L4096 d40).
    /// </summary>
    public const float RaiseThreshold = 2f;

    private const int Rows = 8, Cols = 32;

    /// <summary>
    /// P^T rows [0, <paramref name="keys"/>) of one panel: S^T = K_tile Q^T_panel over depth <paramref name="d"/>
    /// (<paramref name="packedK"/>: 8-key A panels of the scaled keys, <paramref name="qPanel"/>: [d x 32] B panel),
    /// exponentiated against the reference <paramref name="max"/> (raised as needed) into <paramref name="panel"/>
    /// (row stride 32), with the row sums added to <paramref name="sum"/> and every raise's factor multiplied into
    /// <paramref name="correction"/> (32 floats each).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Panel(float* packedK, float* qPanel, int d, int keys, float* panel, float* max, float* sum, float* correction)
    {
        var m0 = Vector512.Load(max); var m1 = Vector512.Load(max + 16);
        var s0 = Vector512.Load(sum); var s1 = Vector512.Load(sum + 16);
        var threshold = Vector512.Create(RaiseThreshold);
        var lim0 = m0 + threshold; var lim1 = m1 + threshold;
        for (int r0 = 0; r0 < keys; r0 += Rows)
        {
            float* a = packedK + (long)r0 * d, b = qPanel;
            Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default, c30 = default, c31 = default;
            Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default, c60 = default, c61 = default, c70 = default, c71 = default;
            for (int p = 0; p < d; p++)
            {
                var b0 = Vector512.LoadAligned(b); var b1 = Vector512.LoadAligned(b + 16);
                var a0 = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(a0, b0, c00); c01 = Vector512.FusedMultiplyAdd(a0, b1, c01);
                var a1 = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(a1, b0, c10); c11 = Vector512.FusedMultiplyAdd(a1, b1, c11);
                var a2 = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(a2, b0, c20); c21 = Vector512.FusedMultiplyAdd(a2, b1, c21);
                var a3 = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(a3, b0, c30); c31 = Vector512.FusedMultiplyAdd(a3, b1, c31);
                var a4 = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(a4, b0, c40); c41 = Vector512.FusedMultiplyAdd(a4, b1, c41);
                var a5 = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(a5, b0, c50); c51 = Vector512.FusedMultiplyAdd(a5, b1, c51);
                var a6 = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(a6, b0, c60); c61 = Vector512.FusedMultiplyAdd(a6, b1, c61);
                var a7 = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(a7, b0, c70); c71 = Vector512.FusedMultiplyAdd(a7, b1, c71);
                a += Rows; b += Cols;
            }
            float* row = panel + (long)r0 * Cols;
            if (r0 + Rows > keys)
            {
                // The last, partial group: the packed keys are zero past the end, so the tile is computed whole
                // and its valid rows finished through memory (once per panel).
                StoreTile(row, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
                m0.Store(max); m1.Store(max + 16); s0.Store(sum); s1.Store(sum + 16);
                PartialGroup(panel, r0, keys - r0, max, sum, correction);
                return;
            }
            // vmaxps directly: Vector512.Max's IEEE -0 / NaN handling costs three instructions per max.
            var t0 = Avx512F.Max(Avx512F.Max(Avx512F.Max(c00, c10), Avx512F.Max(c20, c30)), Avx512F.Max(Avx512F.Max(c40, c50), Avx512F.Max(c60, c70)));
            var t1 = Avx512F.Max(Avx512F.Max(Avx512F.Max(c01, c11), Avx512F.Max(c21, c31)), Avx512F.Max(Avx512F.Max(c41, c51), Avx512F.Max(c61, c71)));
            if (Vector512.GreaterThanAny(t0, lim0) || Vector512.GreaterThanAny(t1, lim1))
            {
                // The rare path goes through memory, so that no accumulator lives across the call (all
                // vector registers are caller-saved: the JIT would otherwise spill them on every group).
                StoreTile(row, c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71);
                m0.Store(max); m1.Store(max + 16); s0.Store(sum); s1.Store(sum + 16);
                Raise(panel, r0, Rows, max, sum, correction);
                m0 = Vector512.Load(max); m1 = Vector512.Load(max + 16); s0 = Vector512.Load(sum); s1 = Vector512.Load(sum + 16);
                lim0 = m0 + threshold; lim1 = m1 + threshold;
                c00 = Vector512.LoadAligned(row); c01 = Vector512.LoadAligned(row + 16); c10 = Vector512.LoadAligned(row + 32); c11 = Vector512.LoadAligned(row + 48);
                c20 = Vector512.LoadAligned(row + 64); c21 = Vector512.LoadAligned(row + 80); c30 = Vector512.LoadAligned(row + 96); c31 = Vector512.LoadAligned(row + 112);
                c40 = Vector512.LoadAligned(row + 128); c41 = Vector512.LoadAligned(row + 144); c50 = Vector512.LoadAligned(row + 160); c51 = Vector512.LoadAligned(row + 176);
                c60 = Vector512.LoadAligned(row + 192); c61 = Vector512.LoadAligned(row + 208); c70 = Vector512.LoadAligned(row + 224); c71 = Vector512.LoadAligned(row + 240);
            }
            var e00 = Exp2(c00 - m0); var e01 = Exp2(c01 - m1); e00.StoreAligned(row); e01.StoreAligned(row + 16);
            var e10 = Exp2(c10 - m0); var e11 = Exp2(c11 - m1); e10.StoreAligned(row + 32); e11.StoreAligned(row + 48);
            var e20 = Exp2(c20 - m0); var e21 = Exp2(c21 - m1); e20.StoreAligned(row + 64); e21.StoreAligned(row + 80);
            var e30 = Exp2(c30 - m0); var e31 = Exp2(c31 - m1); e30.StoreAligned(row + 96); e31.StoreAligned(row + 112);
            s0 += (e00 + e10) + (e20 + e30); s1 += (e01 + e11) + (e21 + e31);
            var e40 = Exp2(c40 - m0); var e41 = Exp2(c41 - m1); e40.StoreAligned(row + 128); e41.StoreAligned(row + 144);
            var e50 = Exp2(c50 - m0); var e51 = Exp2(c51 - m1); e50.StoreAligned(row + 160); e51.StoreAligned(row + 176);
            var e60 = Exp2(c60 - m0); var e61 = Exp2(c61 - m1); e60.StoreAligned(row + 192); e61.StoreAligned(row + 208);
            var e70 = Exp2(c70 - m0); var e71 = Exp2(c71 - m1); e70.StoreAligned(row + 224); e71.StoreAligned(row + 240);
            s0 += (e40 + e50) + (e60 + e70); s1 += (e41 + e51) + (e61 + e71);
        }
        m0.Store(max); m1.Store(max + 16);
        s0.Store(sum); s1.Store(sum + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile(float* row, Vector512<float> c00, Vector512<float> c01, Vector512<float> c10, Vector512<float> c11,
        Vector512<float> c20, Vector512<float> c21, Vector512<float> c30, Vector512<float> c31, Vector512<float> c40, Vector512<float> c41,
        Vector512<float> c50, Vector512<float> c51, Vector512<float> c60, Vector512<float> c61, Vector512<float> c70, Vector512<float> c71)
    {
        c00.StoreAligned(row); c01.StoreAligned(row + 16); c10.StoreAligned(row + 32); c11.StoreAligned(row + 48);
        c20.StoreAligned(row + 64); c21.StoreAligned(row + 80); c30.StoreAligned(row + 96); c31.StoreAligned(row + 112);
        c40.StoreAligned(row + 128); c41.StoreAligned(row + 144); c50.StoreAligned(row + 160); c51.StoreAligned(row + 176);
        c60.StoreAligned(row + 192); c61.StoreAligned(row + 208); c70.StoreAligned(row + 224); c71.StoreAligned(row + 240);
    }

    /// <summary>
    /// The last key group when fewer than 8 keys remain, its scores stored at row <paramref name="r0"/> (rows past
    /// <paramref name="valid"/> are the zero padding of the packed keys and take no part): the same raise and
    /// exponentials, row by row.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void PartialGroup(float* panel, int r0, int valid, float* max, float* sum, float* correction)
    {
        float* row = panel + (long)r0 * Cols;
        GroupMax(row, valid, out var t0, out var t1);
        var threshold = Vector512.Create(RaiseThreshold);
        if (Vector512.GreaterThanAny(t0, Vector512.Load(max) + threshold) || Vector512.GreaterThanAny(t1, Vector512.Load(max + 16) + threshold))
            Raise(panel, r0, valid, max, sum, correction);
        var m0 = Vector512.Load(max); var m1 = Vector512.Load(max + 16);
        var s0 = Vector512.Load(sum); var s1 = Vector512.Load(sum + 16);
        for (int r = 0; r < valid; r++)
        {
            var e0 = Exp2(Vector512.Load(row + r * Cols) - m0); var e1 = Exp2(Vector512.Load(row + r * Cols + 16) - m1);
            e0.StoreAligned(row + r * Cols); e1.StoreAligned(row + r * Cols + 16);
            s0 += e0; s1 += e1;
        }
        m0.Store(max); m1.Store(max + 16);
        s0.Store(sum); s1.Store(sum + 16);
    }

    /// <summary>The per-query max of <paramref name="rows"/> stored score rows.</summary>
    private static void GroupMax(float* row, int rows, out Vector512<float> t0, out Vector512<float> t1)
    {
        t0 = Vector512.Load(row); t1 = Vector512.Load(row + 16);
        for (int r = 1; r < rows; r++)
        {
            t0 = Avx512F.Max(t0, Vector512.Load(row + r * Cols));
            t1 = Avx512F.Max(t1, Vector512.Load(row + r * Cols + 16));
        }
    }

    /// <summary>
    /// Raises the reference <paramref name="max"/> to the max of itself and the group of <paramref name="groupRows"/>
    /// score rows stored at row <paramref name="rows"/> of the panel, in every query, and rescales what was computed
    /// against the old one by 2^(m_old - m_new): the panel's first <paramref name="rows"/> rows (probabilities), the
    /// sums and the output correction. The factor is exact (0 when the old reference was -inf).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Raise(float* panel, int rows, int groupRows, float* max, float* sum, float* correction)
    {
        GroupMax(panel + (long)rows * Cols, groupRows, out var t0, out var t1);
        float* factor = stackalloc float[Cols];
        float* now = stackalloc float[Cols];
        Avx512F.Max(Vector512.Load(max), t0).Store(now);
        Avx512F.Max(Vector512.Load(max + 16), t1).Store(now + 16);
        for (int j = 0; j < Cols; j++)
        {
            factor[j] = float.Exp2(max[j] - now[j]);
            max[j] = now[j];
        }
        var f0 = Vector512.Load(factor); var f1 = Vector512.Load(factor + 16);
        (Vector512.Load(sum) * f0).Store(sum);
        (Vector512.Load(sum + 16) * f1).Store(sum + 16);
        (Vector512.Load(correction) * f0).Store(correction);
        (Vector512.Load(correction + 16) * f1).Store(correction + 16);
        for (int r = 0; r < rows; r++)
        {
            float* row = panel + (long)r * Cols;
            (Vector512.LoadAligned(row) * f0).StoreAligned(row);
            (Vector512.LoadAligned(row + 16) * f1).StoreAligned(row + 16);
        }
    }

    /// <summary>
    /// 2^x for x &lt;= <see cref="RaiseThreshold"/> in three steps on the vector ports: f = x - floor(x) in [0, 1) by
    /// vreduceps, 2^f by a degree-5 polynomial, and 2^floor(x) applied by vscalefps (which floors its exponent
    /// operand itself), so neither the round nor the subtraction of SimdMath.Exp2's range reduction is needed, nor
    /// its clamp: x far below the float range gives 0.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Exp2(Vector512<float> x)
    {
        var f = Avx512DQ.Reduce(x, 0x09);
        var y = Vector512.FusedMultiplyAdd(Vector512.Create(F5), f, Vector512.Create(F4));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(F3));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(F2));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(F1));
        y = Vector512.FusedMultiplyAdd(y, f, Vector512.Create(F0));
        return Avx512F.Scale(y, x);
    }

    // 2^f on [0, 1): degree 5, least-squares fit of the relative error at Chebyshev nodes with Lawson reweighting
    // (max relative error 1.6e-7 evaluated in float).
    private const float F0 = 9.999999404e-01f, F1 = 6.931530833e-01f, F2 = 2.401536256e-01f, F3 = 5.582631379e-02f, F4 = 8.989344351e-03f, F5 = 1.877574949e-03f;
}
