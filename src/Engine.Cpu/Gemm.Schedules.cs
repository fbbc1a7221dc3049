using Engine.Core;

namespace Engine.Cpu;

// Schedules of Gemm.Run for products with many macro tiles along one side: the operand that is reused by every
// job is packed once and shared, the other is packed by each job into its own cache-sized block right before it
// is multiplied, so it is written and read back while still in L2 instead of making a round trip through L3/DRAM.
internal static unsafe partial class Gemm
{
    /// <summary>Macro tiles along the long side from which a product packs that side per job (enough jobs to balance threads).</summary>
    private const int LocalJobs = 4;

    /// <summary>Panels per macro tile side (MC = 8 MR, NC = 8 NR).</summary>
    private const int TilePanels = 8;

    /// <summary>
    /// Whether the AVX-512 micro-kernel reads A from its rows (<see cref="Kernel512Rows"/>) instead of packed panels: float32
    /// rows contiguous in depth and alpha 1 (a Linear layer's activations). A tall product then copies nothing per job but
    /// its B block (measured on one core: 3-13% faster from 8192 x 320 -> 320 to 512 x 1280 -> 1280). Not when the rows lie
    /// a multiple of 2 KB apart (K a multiple of 512): their slices then share a quarter or less of the L1 sets and evict
    /// each other (512 x 5120 -> 1280 ran 6% slower than with packed panels).
    /// </summary>
    private static bool ReadsRowsOfA(in GemmProblem g) =>
        Wide && g.TypeA == DType.F32 && g.CsA == 1 && g.Alpha == 1f && (long)g.RsA * sizeof(float) % 2048 != 0;

    /// <summary>Threads a parallel loop on <paramref name="options"/> runs on (1 when serial).</summary>
    private static int Threads(ParallelOptions? options) =>
        options is null ? 1 : options.MaxDegreeOfParallelism > 0 ? options.MaxDegreeOfParallelism : Environment.ProcessorCount;

    /// <summary>
    /// First panel of part <paramref name="part"/> of <paramref name="panels"/> split into <paramref name="parts"/>: tiles of
    /// <see cref="TilePanels"/> (the last one shorter) when that is the count, else (a count raised for the threads) near-equal runs.
    /// </summary>
    private static int Bound(int panels, int part, int parts) =>
        parts != (panels + TilePanels - 1) / TilePanels ? (int)((long)panels * part / parts)
            : part == parts ? panels : Math.Min(panels, part * TilePanels);

    /// <summary>
    /// Parts of at most <see cref="TilePanels"/> panels along one side, as many as a multiple of the thread count while
    /// there are few (a 1280-wide side in five 256-column jobs keeps one of two threads idle for a fifth of the time;
    /// six parts of 6-7 panels do not), never more than there are panels.
    /// </summary>
    private static int Parts(int panels, int threads)
    {
        int parts = (panels + TilePanels - 1) / TilePanels;
        if (threads > 1 && parts < 4 * threads) parts = Math.Min(panels, (parts + threads - 1) / threads * threads);
        return parts;
    }

    /// <summary>
    /// Macro tile grid for <see cref="Run"/>'s shared-panel schedule: parts of at most <see cref="TilePanels"/> panels each way,
    /// the side with the larger parts split further until the job count is a multiple of the threads (or many).
    /// </summary>
    private static (int M, int N) Grid(int mPanels, int nPanels, int threads)
    {
        int m = (mPanels + TilePanels - 1) / TilePanels, n = (nPanels + TilePanels - 1) / TilePanels;
        while (threads > 1 && m * n % threads != 0 && m * n < 4 * threads && (m < mPanels || n < nPanels))
        {
            if (n < nPanels && (m == mPanels || (double)nPanels / n >= (double)mPanels / m)) n++;
            else m++;
        }
        return (m, n);
    }

    /// <summary>
    /// Tall products (M >= N, e.g. a Linear layer on thousands of tokens): B is packed once per column block (as in
    /// <see cref="Run"/>), then each job packs its rows of A (all of K) and multiplies them by the whole block.
    /// </summary>
    private static void RunRowLocal(in GemmProblem g, ParallelOptions? options)
    {
        int ncb = ColumnBlock(g);
        int nPanelsBlock = (Math.Min(ncb, g.N) + NR - 1) / NR;
        using var blockB = KernelScratch.Rent((long)nPanelsBlock * NR * g.K);
        nint pb = (nint)blockB.Pointer;
        var problem = g;
        int mPanels = (g.M + MR - 1) / MR, mParts = Parts(mPanels, Threads(options));
        bool rowsOfA = ReadsRowsOfA(g);
        for (int jc = 0; jc < g.N; jc += ncb)
        {
            int j0 = jc, width = Math.Min(ncb, g.N - jc), nPanels = (width + NR - 1) / NR, nTiles = (nPanels + TilePanels - 1) / TilePanels;
            For(nPanels, options, jp => PackB(problem, j0 / NR + jp, (float*)pb + (long)jp * NR * problem.K));
            For(mParts, options, it =>
            {
                // The job's rows in this thread's A buffer (not the caller's B block), addressed as if all of A were packed;
                // none when the kernel reads the rows themselves.
                int ip0 = Bound(mPanels, it, mParts), panels = Bound(mPanels, it + 1, mParts) - ip0;
                float* packedA = null;
                using var rowsA = rowsOfA ? default : KernelScratch.Rent((long)panels * MR * problem.K);
                if (!rowsOfA)
                {
                    float* local = rowsA.Pointer;
                    for (int ip = 0; ip < panels; ip++) PackA(problem, ip0 + ip, local + (long)ip * MR * problem.K);
                    packedA = local - (long)ip0 * MR * problem.K;
                }
                for (int jt = 0; jt < nTiles; jt++)
                    MacroTile(problem, ip0 * MR, (ip0 + panels) * MR, j0 + Bound(nPanels, jt, nTiles) * NR, j0 + Bound(nPanels, jt + 1, nTiles) * NR,
                        j0, packedA, (float*)pb);
            });
        }
    }

    /// <summary>
    /// Wide products (N > M, e.g. a 1x1 convolution with the image as B): all of A is packed once, then each job
    /// packs its columns of B (all of K) and multiplies every row of A by them.
    /// </summary>
    private static void RunColumnLocal(in GemmProblem g, ParallelOptions? options)
    {
        int mPanels = (g.M + MR - 1) / MR, mTiles = (mPanels + TilePanels - 1) / TilePanels;
        int nPanels = (g.N + NR - 1) / NR, nParts = Parts(nPanels, Threads(options));
        using var allA = KernelScratch.Rent((long)mPanels * MR * g.K);
        nint pa = (nint)allA.Pointer;
        var problem = g;
        For(mPanels, options, ip => PackA(problem, ip, (float*)pa + (long)ip * MR * problem.K));
        For(nParts, options, jt =>
        {
            // The job's columns in this thread's B buffer (the caller's packed A lives in its A buffer).
            int jp0 = Bound(nPanels, jt, nParts), panels = Bound(nPanels, jt + 1, nParts) - jp0, j0 = jp0 * NR;
            using var columnsB = KernelScratch.Rent((long)panels * NR * problem.K);
            float* local = columnsB.Pointer;
            for (int jp = 0; jp < panels; jp++) PackB(problem, jp0 + jp, local + (long)jp * NR * problem.K);
            for (int it = 0; it < mTiles; it++)
                MacroTile(problem, Bound(mPanels, it, mTiles) * MR, Bound(mPanels, it + 1, mTiles) * MR, j0, j0 + panels * NR, j0, (float*)pa, local);
        });
    }
}
