namespace Engine.Cpu;

// Schedules of Gemm.Run for products with many macro tiles along one side: the operand that is reused by every
// job is packed once and shared, the other is packed by each job into its own cache-sized block right before it
// is multiplied, so it is written and read back while still in L2 instead of making a round trip through L3/DRAM.
internal static unsafe partial class Gemm
{
    /// <summary>Macro tiles along the long side from which a product packs that side per job (enough jobs to balance threads).</summary>
    private const int LocalJobs = 4;

    /// <summary>
    /// Tall products (M >= N, e.g. a Linear layer on thousands of tokens): B is packed once per column block (as in
    /// <see cref="Run"/>), then each job packs its MC rows of A (all of K) and multiplies them by the whole block.
    /// </summary>
    private static void RunRowLocal(in GemmProblem g, ParallelOptions? options)
    {
        var scratch = _scratch ??= new Scratch();
        int ncb = Math.Max(NC, (int)Math.Min(g.N, PackedBBudget / g.K) / NC * NC);
        int nPanelsBlock = (Math.Min(ncb, g.N) + NR - 1) / NR;
        nint pb = (nint)scratch.EnsureB((long)nPanelsBlock * NR * g.K);
        var problem = g;
        int mTiles = (g.M + MC - 1) / MC, panelsPerTile = MC / MR;
        for (int jc = 0; jc < g.N; jc += ncb)
        {
            int j0 = jc, width = Math.Min(ncb, g.N - jc), nPanels = (width + NR - 1) / NR, nTiles = (width + NC - 1) / NC;
            For(nPanels, options, jp => PackB(problem, j0 / NR + jp, (float*)pb + (long)jp * NR * problem.K));
            For(mTiles, options, it =>
            {
                // The job's rows in this thread's A buffer (not the caller's B block), addressed as if all of A were packed.
                int ip0 = it * panelsPerTile, panels = Math.Min(panelsPerTile, (problem.M + MR - 1) / MR - ip0);
                float* local = (_scratch ??= new Scratch()).EnsureA((long)panels * MR * problem.K);
                for (int ip = 0; ip < panels; ip++) PackA(problem, ip0 + ip, local + (long)ip * MR * problem.K);
                float* packedA = local - (long)ip0 * MR * problem.K;
                for (int jt = 0; jt < nTiles; jt++) MacroTile(problem, it, j0, jt, packedA, (float*)pb);
            });
        }
    }

    /// <summary>
    /// Wide products (N > M, e.g. a 1x1 convolution with the image as B): all of A is packed once, then each job
    /// packs NC columns of B (all of K) and multiplies every row of A by them.
    /// </summary>
    private static void RunColumnLocal(in GemmProblem g, ParallelOptions? options)
    {
        var scratch = _scratch ??= new Scratch();
        int mPanels = (g.M + MR - 1) / MR, mTiles = (g.M + MC - 1) / MC, nTiles = (g.N + NC - 1) / NC;
        nint pa = (nint)scratch.EnsureA((long)mPanels * MR * g.K);
        var problem = g;
        For(mPanels, options, ip => PackA(problem, ip, (float*)pa + (long)ip * MR * problem.K));
        For(nTiles, options, jt =>
        {
            // The job's columns in this thread's B buffer (the caller's packed A lives in its A buffer).
            int j0 = jt * NC, panels = (Math.Min(NC, problem.N - j0) + NR - 1) / NR;
            float* local = (_scratch ??= new Scratch()).EnsureB((long)panels * NR * problem.K);
            for (int jp = 0; jp < panels; jp++) PackB(problem, j0 / NR + jp, local + (long)jp * NR * problem.K);
            for (int it = 0; it < mTiles; it++) MacroTile(problem, it, j0, 0, (float*)pa, local);
        });
    }
}
