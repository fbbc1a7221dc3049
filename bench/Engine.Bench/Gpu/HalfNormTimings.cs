using System.Diagnostics;
using System.Text;
using Engine.Core;
using Engine.Gpu;

namespace Engine.Bench.Gpu;

/// <summary>
/// <c>Engine.Bench --half-norms [--out FILE]</c>: times GroupNorm(32) + SiLU at the VAE decoder's largest
/// shape (128 channels at 512 x 512, batch 1) and LayerNorm at a UNet transformer's (2 x 4096 rows of 320)
/// through the CUDA device in f16, bf16 and f32 (warm-up, then the median of synchronised calls), with the
/// bytes of one read of the input and one write of the output per call, and their share of the GPU's nominal
/// HBM bandwidth (issue 16's target: GroupNorm + SiLU in f16 at 60% or more). Writes a markdown table.
/// </summary>
public static class HalfNormTimings
{
    public static int Run(string? outFile)
    {
        IlgpuDevice device;
        try { device = IlgpuDevice.Create("cuda"); }
        catch (PlatformNotSupportedException e)
        {
            Console.WriteLine($"half-norm timings: {e.Message}");
            return 1;
        }
        using (device)
        {
            GpuInfo.Name = device.Name;
            var text = new StringBuilder();
            text.AppendLine($"Norms on {device.Name}, {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC (bytes: input read once + output written once)");
            text.AppendLine();
            text.AppendLine("| op | shape | dtype | median ms | GB/s | share of HBM |");
            text.AppendLine("|---|---|---|---:|---:|---:|");
            foreach (var dtype in new[] { DType.F16, DType.BF16, DType.F32 })
            {
                int[] image = [1, 128, 512, 512];
                Row(text, device, "GroupNorm(32)+SiLU", "128ch@512 b1", dtype, image, 128,
                    (x, g, b, y) => device.GroupNorm(x, g, b, y, 32, 1e-6f, silu: true));
                int[] tokens = [2, 4096, 320];
                Row(text, device, "LayerNorm", "2x4096x320", dtype, tokens, 320, (x, g, b, y) => device.LayerNorm(x, g, b, y, 1e-5f));
            }
            Console.WriteLine(text);
            if (outFile is not null) File.WriteAllText(outFile, text.ToString());
        }
        return 0;
    }

    private static void Row(StringBuilder text, IlgpuDevice device, string op, string shape, DType dtype, int[] dims, int affine,
        Action<Tensor, Tensor, Tensor, Tensor> run)
    {
        long count = Tensor.ShapeLength(dims);
        var rng = new Random(1);
        var host = new float[count];
        for (long i = 0; i < count; i++) host[i] = 2f * rng.NextSingle() - 1f;
        using var x32 = device.Upload(host, dims);
        using var x = dtype == DType.F32 ? device.Upload(host, dims) : device.Convert(x32, dtype);
        using var gamma = device.Upload(Enumerable.Range(0, affine).Select(i => 1f + 0.01f * i).ToArray(), affine);
        using var beta = device.Upload(Enumerable.Range(0, affine).Select(i => 0.001f * i).ToArray(), affine);
        using var y = device.Allocate(dtype, dims);
        double ms = Median(device, () => run(x, gamma, beta, y));
        double bytes = 2.0 * count * dtype.Size(), rate = bytes / (ms * 1e-3);
        string share = GpuInfo.PeakBandwidth is double peak ? $"{100 * rate / peak:F0}%" : "-";
        text.AppendLine($"| {op} | {shape} | {dtype} | {ms:F4} | {rate / 1e9:F0} | {share} |");
        Console.WriteLine(text.ToString().Split('\n')[^2]);
    }

    private static double Median(Device device, Action call)
    {
        for (int i = 0; i < 3; i++) call();
        device.Synchronize();
        var times = new List<double>();
        var total = Stopwatch.StartNew();
        while (times.Count < 5 || (times.Count < 50 && total.Elapsed.TotalSeconds < 1.5))
        {
            var sw = Stopwatch.StartNew();
            call();
            device.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return times[times.Count / 2];
    }
}
