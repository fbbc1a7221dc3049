using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Engine.Core;

namespace Engine.Cpu;

/// <summary>
/// One GEMM problem: C = act(alpha op(A) op(B) + bias) (or C += ... when <see cref="Accumulate"/>),
/// with op(A)(i, p) = A[i * RsA + p * CsA] and op(B)(p, j) = B[p * RsB + j * CsB], so every transpose
/// case is a choice of strides and no operand is ever transposed as a whole. Pointers are stored as
/// <see cref="nint"/> so the struct can be captured by parallel loop bodies; callers keep the memory pinned.
/// Strides count elements of the operand's own type (<see cref="TypeA"/>, <see cref="TypeB"/>).
/// </summary>
internal struct GemmProblem
{
    public int M, N, K;
    public nint A; public int RsA, CsA;
    public nint B; public int RsB, CsB;
    public nint C; public int Ldc;
    public float Alpha;
    /// <summary>Bias vector or 0; indexed by column (Linear) or by row when <see cref="BiasPerRow"/> (convolution channels).</summary>
    public nint Bias; public bool BiasPerRow;
    public Activation Activation;
    public bool Accumulate;
    /// <summary>Element types of A and B: F32 (default), or F16 / BF16 weights that the packers widen as they copy.</summary>
    public DType TypeA, TypeB;
}

/// <summary>
/// Blocked, packed single-precision GEMM (the BLIS scheme). A is packed into MR-row panels (scaled by
/// alpha) and B, a block of columns at a time, into NR-column panels, both over all of K and
/// zero-padded so the register-tiled micro-kernel always runs full MR x NR tiles; the kernel then
/// walks K in KC-deep slices. Packing is where transposes are absorbed: panels are laid out in the
/// order the micro-kernel reads them, so its loads are sequential and aligned whatever the strides.
/// <para>
/// Tiling: with AVX-512 the micro-kernel holds an 8 x 32 tile of C in 16 zmm accumulators (2 vectors
/// per row; 16 + 2 B vectors + 1 broadcast fit the 32 registers), issuing 16 FMAs per 2 B loads and
/// 8 broadcasts. The AVX2 kernel holds 6 x 16 in 12 ymm registers (of 16). KC = 128 keeps one B
/// micro-panel (KC x NR, 16 KB) in the 32 KB L1 beside the A panel while the MC x KC block of A
/// streams from L2 (measured: KC = 256 fills L1 and runs at half the speed). Threads split C into
/// macro tiles of at most MC x NC, near-equal and as many as a multiple of the threads (Gemm.Schedules.cs),
/// that each run through all of K, so a tile of C stays in L2; packed panels
/// are shared and read-only. Products with many tiles along one side pack that side per job instead
/// (Gemm.Schedules.cs), and F16 / BF16 operands are widened by the packers (Gemm.Packing.cs).
/// </para>
/// </summary>
internal static unsafe partial class Gemm
{
    private static readonly bool Wide = Vector512.IsHardwareAccelerated;
    private static readonly int MR = Wide ? 8 : 6;
    private static readonly int NR = Wide ? 32 : 16;
    private const int KC = 128;
    // Macro tile of C handled by one parallel job: 8 micro-panels each way.
    private static readonly int MC = MR * 8;
    private static readonly int NC = NR * 8;
    // Below this many multiply-adds a problem runs on the calling thread: parallel dispatch costs more.
    private const long SerialWork = 1 << 17;

    /// <summary>
    /// Small per-thread buffers (64-byte aligned), grown on demand and kept for reuse: a row block's A panels and C block
    /// (<see cref="RunRowBlocks"/>) and the widened rows of half-precision panels. Whole packed operands are rented from
    /// <see cref="KernelScratch"/> for the call instead, so they do not stay resident per thread.
    /// </summary>
    private sealed class Scratch
    {
        public float* A, Stage;
        public long ACap, StageCap;

        public float* EnsureA(long count) => Ensure(ref A, ref ACap, count);
        /// <summary>Float32 rows of a half-precision panel, widened before they are packed.</summary>
        public float* EnsureStage(long count) => Ensure(ref Stage, ref StageCap, count);

        private static float* Ensure(ref float* p, ref long cap, long count)
        {
            if (count <= cap) return p;
            if (p != null) NativeMemory.AlignedFree(p);
            long grown = Math.Max(count, cap * 2);
            PerThreadScratch.Add((grown - cap) * sizeof(float));
            cap = grown;
            p = (float*)NativeMemory.AlignedAlloc((nuint)(cap * sizeof(float)), 64);
            return p;
        }

        ~Scratch()
        {
            if (A != null) NativeMemory.AlignedFree(A);
            if (Stage != null) NativeMemory.AlignedFree(Stage);
            PerThreadScratch.Add(-(ACap + StageCap) * sizeof(float));
        }
    }

    [ThreadStatic] private static Scratch? _scratch;

    /// <summary>
    /// Runs <paramref name="g"/>; in parallel on <paramref name="options"/> when it is large enough,
    /// on the calling thread when <paramref name="options"/> is null.
    /// </summary>
    public static void Run(in GemmProblem g, ParallelOptions? options)
    {
        if (g.M == 0 || g.N == 0) return;
        if (g.K == 0) { EmptyProduct(g); return; }
        if ((long)g.M * g.N * g.K < SerialWork) options = null;
        if (g.M <= FewRows && g.CsA == 1 && g.RsB == 1 && !g.BiasPerRow && g.TypeA == DType.F32) { RunColumnLocal(g, options); return; }
        int mTilesAll = (g.M + MC - 1) / MC, nTilesAll = (g.N + NC - 1) / NC;
        if (g.M >= g.N && mTilesAll >= LocalJobs) { RunRowLocal(g, options); return; }
        if (g.N > g.M && nTilesAll >= LocalJobs) { RunColumnLocal(g, options); return; }
        int mPanels = (g.M + MR - 1) / MR;
        int ncb = ColumnBlock(g);
        int nPanelsBlock = (Math.Min(ncb, g.N) + NR - 1) / NR;
        using var blockA = KernelScratch.Rent((long)mPanels * MR * g.K);
        using var blockB = KernelScratch.Rent((long)nPanelsBlock * NR * g.K);
        float* packedA = blockA.Pointer, packedB = blockB.Pointer;
        nint pa = (nint)packedA, pb = (nint)packedB;
        var problem = g;
        int threads = Threads(options);
        for (int jc = 0; jc < g.N; jc += ncb)
        {
            int j0 = jc, width = Math.Min(ncb, g.N - jc), nPanels = (width + NR - 1) / NR;
            int aJobs = jc == 0 ? mPanels : 0;
            For(aJobs + nPanels, options, job =>
            {
                if (job < aJobs) PackA(problem, job, (float*)pa + (long)job * MR * problem.K);
                else PackB(problem, j0 / NR + job - aJobs, (float*)pb + (long)(job - aJobs) * NR * problem.K);
            });
            var (mParts, nParts) = Grid(mPanels, nPanels, threads);
            For(mParts * nParts, options, job =>
            {
                int it = job / nParts, jt = job % nParts;
                MacroTile(problem, Bound(mPanels, it, mParts) * MR, Bound(mPanels, it + 1, mParts) * MR,
                    j0 + Bound(nPanels, jt, nParts) * NR, j0 + Bound(nPanels, jt + 1, nParts) * NR, j0, (float*)pa, (float*)pb);
            });
        }
    }

    /// <summary>Rows of one packed A panel (the micro-kernel's tile height).</summary>
    public static int PanelRows => MR;

    /// <summary>Columns of one packed B panel (the micro-kernel's tile width).</summary>
    public static int PanelCols => NR;

    /// <summary>Floats needed to pack all of op(A) of <paramref name="g"/> (<see cref="PackAllA"/>).</summary>
    public static long PackedASize(in GemmProblem g) => (long)((g.M + MR - 1) / MR) * MR * g.K;

    /// <summary>Floats needed to pack all of op(B) of <paramref name="g"/> (<see cref="PackAllB"/>).</summary>
    public static long PackedBSize(in GemmProblem g) => (long)((g.N + NR - 1) / NR) * NR * g.K;

    /// <summary>Packs every MR-row panel of alpha op(A), panel after panel (stride MR K floats).</summary>
    public static void PackAllA(in GemmProblem g, float* dst)
    {
        for (int ip = 0; ip * MR < g.M; ip++) PackA(g, ip, dst + (long)ip * MR * g.K);
    }

    /// <summary>Packs every NR-column panel of op(B), panel after panel (stride NR K floats); dst must be 64-byte aligned.</summary>
    public static void PackAllB(in GemmProblem g, float* dst)
    {
        for (int jp = 0; jp * NR < g.N; jp++) PackB(g, jp, dst + (long)jp * NR * g.K);
    }

    /// <summary>
    /// C [m, n] = (or +=) A B on the calling thread from operands packed earlier, for callers that reuse
    /// a packed operand across many products (attention packs Q once per query block and K, V once per
    /// head). <paramref name="packedA"/> and <paramref name="packedB"/> point at depth 0 of this product
    /// inside their panels; consecutive panels lie <paramref name="aPanelStride"/> /
    /// <paramref name="bPanelStride"/> floats apart (B panels 64-byte aligned). <paramref name="rowBias"/>,
    /// when given, is added per row of C with the last depth slice.
    /// </summary>
    public static void RunPacked(int m, int n, int k, float* packedA, long aPanelStride, float* packedB, long bPanelStride,
        float* c, int ldc, bool accumulate, float* rowBias = null)
    {
        for (int pc = 0; pc < k; pc += KC)
        {
            int kc = Math.Min(KC, k - pc);
            bool acc = pc > 0 || accumulate;
            float* bias = pc + kc == k ? rowBias : null;
            for (int j0 = 0; j0 < n; j0 += NR)
            {
                float* bPanel = packedB + (long)(j0 / NR) * bPanelStride + (long)pc * NR;
                int nr = Math.Min(NR, n - j0);
                for (int i0 = 0; i0 < m; i0 += MR)
                {
                    float* aPanel = packedA + (long)(i0 / MR) * aPanelStride + (long)pc * MR;
                    int mr = Math.Min(MR, m - i0);
                    var e = new Epilogue(acc, null, bias == null ? null : bias + i0);
                    if (Wide) Kernel512(kc, aPanel, bPanel, c + (long)i0 * ldc + j0, ldc, mr, nr, e);
                    else Kernel256(kc, aPanel, bPanel, c + (long)i0 * ldc + j0, ldc, mr, nr, e);
                }
            }
        }
    }

    /// <summary>Floats of packed B per column block (16 MB).</summary>
    private const long PackedBBudget = 4L << 20;

    /// <summary>
    /// Columns of B packed at once (all of K): all of N when it fits <see cref="PackedBBudget"/>, else a multiple of NC
    /// within it, so the packed block stays near L3 size even for very wide products (a VAE convolution has N = H*W in the
    /// hundreds of thousands). Rounding a fitting N down to a multiple of NC would split N = 320 or 640 into a full block
    /// and a sliver that repacks A and runs a pass of narrow tiles of its own.
    /// </summary>
    private static int ColumnBlock(in GemmProblem g) =>
        (long)g.N * g.K <= PackedBBudget ? g.N : Math.Max(NC, (int)(PackedBBudget / g.K) / NC * NC);

    private static void For(int count, ParallelOptions? options, Action<int> body)
    {
        if (options is null || count == 1) { for (int i = 0; i < count; i++) body(i); return; }
        Parallel.For(0, count, options, body);
    }

    /// <summary>
    /// A product with at most this many rows whose A rows and B columns are both contiguous in K (a Linear layer on one
    /// or a few vectors: adaLN modulation, timestep and class embeddings) runs the column-local schedule whatever N (at
    /// N = 320-768 it took 0.7x the CPU time of the shared-panel one). It used to be computed as dot products, which
    /// sum in another order than the micro-kernel: a sample's embedding then rounded differently alone (2 rows with
    /// guidance) than in a batch of 3 (6 rows). Every schedule now gives each element of C the same arithmetic, so a
    /// row of C does not depend on M (docs/ARCHITECTURE.md, "Determinism"). The dot products took 0.55-0.85x the CPU
    /// time at SD 1.5's 2-row embeddings (0.14-0.57 ms against 0.22-1.04 ms per call, one thread), about 7 ms CPU of a
    /// 15 s UNet step.
    /// </summary>
    private const int FewRows = 4;

    /// <summary>K = 0: the product is zero, leaving C (or C + 0 when accumulating) plus bias and activation.</summary>
    private static void EmptyProduct(in GemmProblem g)
    {
        float* c = (float*)g.C, bias = (float*)g.Bias;
        for (int i = 0; i < g.M; i++)
        {
            var row = new Span<float>(c + (long)i * g.Ldc, g.N);
            if (!g.Accumulate) row.Clear();
            for (int j = 0; j < g.N; j++) row[j] += bias == null ? 0f : g.BiasPerRow ? bias[i] : bias[j];
            CpuDevice.ApplyActivation(row, g.Activation);
        }
    }

    /// <summary>
    /// One block of C, rows [<paramref name="iStart"/>, <paramref name="iEnd"/>) and columns [<paramref name="jStart"/>,
    /// <paramref name="jEnd"/>) (panel-aligned starts; ends clamped to M and N), at most MC x NC, computed over all K slices
    /// while the block stays in L2; <paramref name="packedB"/> holds the panels of the column block starting at
    /// <paramref name="jc"/>; a null <paramref name="packedA"/> reads A from its rows (<see cref="ReadsRowsOfA"/>). Within a
    /// slice the B micro-panels loop outermost so each stays in L1 across the A panels.
    /// </summary>
    private static void MacroTile(in GemmProblem g, int iStart, int iEnd, int jStart, int jEnd, int jc, float* packedA, float* packedB)
    {
        iEnd = Math.Min(g.M, iEnd);
        jEnd = Math.Min(g.N, jEnd);
        float* c = (float*)g.C;
        for (int pc = 0; pc < g.K; pc += KC)
        {
            int kc = Math.Min(KC, g.K - pc);
            bool accumulate = pc > 0 || g.Accumulate, last = pc + kc == g.K;
            float* bias = last ? (float*)g.Bias : null;
            for (int j0 = jStart; j0 < jEnd; j0 += NR)
            {
                float* bPanel = packedB + (long)((j0 - jc) / NR) * NR * g.K + (long)pc * NR;
                int nr = Math.Min(NR, g.N - j0);
                for (int i0 = iStart; i0 < iEnd; i0 += MR)
                {
                    int mr = Math.Min(MR, g.M - i0);
                    float* cTile = c + (long)i0 * g.Ldc + j0;
                    var e = new Epilogue(accumulate,
                        bias != null && !g.BiasPerRow ? bias + j0 : null,
                        bias != null && g.BiasPerRow ? bias + i0 : null);
                    float* aPanel = packedA + (long)(i0 / MR) * MR * g.K + (long)pc * MR;
                    if (packedA == null) Kernel512Rows(kc, (float*)g.A + (long)i0 * g.RsA + pc, g.RsA, bPanel, cTile, g.Ldc, mr, nr, e);
                    else if (Wide) Kernel512(kc, aPanel, bPanel, cTile, g.Ldc, mr, nr, e);
                    else Kernel256(kc, aPanel, bPanel, cTile, g.Ldc, mr, nr, e);
                    if (last && g.Activation != Activation.None)
                        for (int r = 0; r < mr; r++) CpuDevice.ApplyActivation(new Span<float>(cTile + (long)r * g.Ldc, nr), g.Activation);
                }
            }
        }
    }
}
