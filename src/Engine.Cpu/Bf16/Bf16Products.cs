using Engine.Core;

namespace Engine.Cpu;

/// <summary>
/// Linear layers and convolutions with bf16 inputs and float32 accumulation on the native kernels
/// (<see cref="Bf16Kernels"/>): weights come packed once (<see cref="Bf16PackedWeight"/>), activations
/// are rounded to bf16 per call into per-thread scratch, and the jobs run in parallel.
/// </summary>
internal static unsafe class Bf16Products
{
    // Linear: rows of x per job (a multiple of the kernel's 12-row tile) and output features per job.
    private const int RowsPerJob = 192;
    private const int ColsPerJob = 64 * Bf16Kernels.PanelCols;

    // Convolution: output positions per job (panels of 32), packed from the image by the job itself.
    private const int PanelsPerJob = 4;

    [ThreadStatic] private static AlignedBuffer? _scratch;

    /// <summary>y [rows, n] = act(x [rows, k] W^T + bias) with W packed.</summary>
    public static void Linear(Bf16Kernels kernels, Bf16PackedWeight w, float* x, int rows, float* bias, float* y, Activation activation, ParallelOptions parallelism)
    {
        int n = w.Rows, k = w.K, pairs = w.Pairs, lda = 2 * pairs;
        long panelStride = (long)pairs * Bf16Kernels.PanelCols;
        int rowJobs = (rows + RowsPerJob - 1) / RowsPerJob, colJobs = (n + ColsPerJob - 1) / ColsPerJob;
        nint xp = (nint)x, yp = (nint)y, bp = (nint)bias;
        var panels = w.Panels!;
        fixed (uint* b0 = panels)
        {
            nint bBase = (nint)b0;
            Parallel.For(0, rowJobs * colJobs, parallelism, job =>
            {
                int rj = job / colJobs, cj = job - rj * colJobs;
                int r0 = rj * RowsPerJob, m = Math.Min(RowsPerJob, rows - r0);
                int j0 = cj * ColsPerJob, cols = Math.Min(ColsPerJob, n - j0);
                var a = (ushort*)(_scratch ??= new AlignedBuffer()).Ensure(((long)m * lda + 1) / 2);
                kernels.RowsToBf16((float*)xp + (long)r0 * k, 0, m, k, k, a, lda);
                float* c = (float*)yp + (long)r0 * n + j0;
                kernels.Gemm(m, cols, pairs, a, lda, (uint*)bBase + (long)(j0 / Bf16Kernels.PanelCols) * panelStride, panelStride,
                    c, n, null, bp == 0 ? null : (float*)bp + j0);
                if (activation != Activation.None)
                    for (int r = 0; r < m; r++) CpuDevice.ApplyActivation(new Span<float>(c + (long)r * n, cols), activation);
            });
        }
    }

    /// <summary>
    /// Convolution as output [Cout, Ho*Wo] = W [Cout, Cin*kh*kw] x columns per image: each job packs its
    /// own 128 output positions from the image (im2col straight into bf16 panels) and multiplies.
    /// </summary>
    public static void Conv(Bf16Kernels kernels, Bf16PackedWeight w, float* x, int batch, int cin, int h, int width, int kh, int kw,
        int stride, int padding, float* bias, float* output, int ho, int wo, ParallelOptions parallelism)
    {
        int cout = w.Rows, pairs = w.Pairs, lda = 2 * pairs, spatial = ho * wo;
        int chunk = PanelsPerJob * Bf16Kernels.PanelCols, chunks = (spatial + chunk - 1) / chunk;
        long imageStride = (long)cin * h * width, outStride = (long)cout * spatial, panelStride = (long)pairs * Bf16Kernels.PanelCols;
        nint xp = (nint)x, op = (nint)output, bp = (nint)bias;
        var rowsArray = w.Bf16Rows!;
        fixed (ushort* a0 = rowsArray)
        {
            nint aBase = (nint)a0;
            Parallel.For(0, batch * chunks, parallelism, job =>
            {
                int img = job / chunks, j0 = (job - img * chunks) * chunk, count = Math.Min(chunk, spatial - j0);
                int panels = (count + Bf16Kernels.PanelCols - 1) / Bf16Kernels.PanelCols;
                var cols = (uint*)(_scratch ??= new AlignedBuffer()).Ensure(panels * panelStride);
                int* geometry = stackalloc int[] { cin, h, width, kh, kw, stride, padding, wo };
                float* image = (float*)xp + img * imageStride;
                for (int p = 0; p < panels; p++)
                {
                    int start = j0 + p * Bf16Kernels.PanelCols;
                    kernels.PackColumns(image, geometry, start, Math.Min(Bf16Kernels.PanelCols, spatial - start), pairs, cols + p * panelStride);
                }
                kernels.Gemm(cout, count, pairs, (ushort*)aBase, lda, cols, panelStride, (float*)op + img * outStride + j0, spatial,
                    bp == 0 ? null : (float*)bp, null);
            });
        }
    }
}
