namespace Engine.Cpu;

// A schedule of Gemm.Run for products whose output is consumed row by row right away (the GEGLU feed-forward's
// projection, which the gated product halves): C is never written whole, each block of rows lives in a thread's
// scratch while the consumer reads it from L2.
internal static unsafe partial class Gemm
{
    /// <summary>
    /// Reads rows [<paramref name="row0"/>, <paramref name="row0"/> + <paramref name="rows"/>) of C from
    /// <paramref name="c"/> (row r at c + r * <paramref name="ldc"/>); the memory is reused once it returns.
    /// </summary>
    internal delegate void RowBlockConsumer(int row0, int rows, float* c, int ldc);

    /// <summary>
    /// Whether <see cref="RunRowBlocks"/> takes <paramref name="g"/>: all of op(B) fits one packed block
    /// (the budget of <see cref="Run"/>), A is float32, nothing accumulates into C and the bias is per column.
    /// </summary>
    public static bool RowBlocksFit(in GemmProblem g) =>
        g.M > 0 && g.N > 0 && g.K > 0 && !g.Accumulate && !g.BiasPerRow && g.TypeA == Engine.Core.DType.F32
        && (long)g.N * g.K <= PackedBBudget;

    /// <summary>
    /// C = act(alpha op(A) op(B) + bias) as <see cref="RunRowLocal"/> computes it (B packed once and shared, each
    /// job packing its MC rows of A and running every column tile), but each job's MC x N block of C goes to a
    /// scratch block of its thread and <paramref name="consume"/> reads it there; <c>g.C</c> is not used. The
    /// values handed over are those <see cref="Run"/> would store. Requires <see cref="RowBlocksFit"/>.
    /// </summary>
    public static void RunRowBlocks(in GemmProblem g, ParallelOptions? options, RowBlockConsumer consume)
    {
        if (!RowBlocksFit(g)) throw new ArgumentException($"Gemm.RunRowBlocks: a {g.M}x{g.N}x{g.K} product that does not fit (see RowBlocksFit).");
        if ((long)g.M * g.N * g.K < SerialWork) options = null;
        int nPanels = (g.N + NR - 1) / NR, nTiles = (g.N + NC - 1) / NC, mTiles = (g.M + MC - 1) / MC, panelsPerTile = MC / MR;
        using var allB = KernelScratch.Rent((long)nPanels * NR * g.K);
        nint pb = (nint)allB.Pointer;
        var problem = g;
        problem.Ldc = g.N;
        For(nPanels, options, jp => PackB(problem, jp, (float*)pb + (long)jp * NR * problem.K));
        For(mTiles, options, it =>
        {
            var local = _scratch ??= new Scratch();
            int ip0 = it * panelsPerTile, panels = Math.Min(panelsPerTile, (problem.M + MR - 1) / MR - ip0);
            int row0 = it * MC, rows = Math.Min(MC, problem.M - row0);
            float* packedLocal = local.EnsureA((long)panels * MR * problem.K);
            // The thread's staging buffer: otherwise only the packers of half-precision panels use it, and this job packs none.
            float* block = local.EnsureStage((long)MC * problem.N);
            for (int ip = 0; ip < panels; ip++) PackA(problem, ip0 + ip, packedLocal + (long)ip * MR * problem.K);
            // Rows and A panels addressed as if all of C and all of A were there: MacroTile indexes them by absolute row.
            var job = problem;
            job.C = (nint)(block - (long)row0 * problem.N);
            float* packedA = packedLocal - (long)ip0 * MR * problem.K;
            for (int jt = 0; jt < nTiles; jt++) MacroTile(job, row0, row0 + MC, jt * NC, (jt + 1) * NC, 0, packedA, (float*)pb);
            consume(row0, rows, block, problem.N);
        });
    }
}
