using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// Dynamic thresholding of x0 predictions (Saharia et al. 2022, as diffusers' _threshold_sample): per
/// sample, s = clamp(quantile(|x0|, ratio), 1, max_value), then x0 = clamp(x0, -s, s) / s. The
/// quantile needs a sort, which the device op surface does not have, so this is the one sampler path
/// that copies a tensor to the host and back each step; it runs only when a config asks for it.
/// </summary>
public static class DynamicThresholding
{
    /// <summary>Thresholds <paramref name="x0"/> [N, ...] in place, each row (sample) separately.</summary>
    public static void Apply(Tensor x0, double ratio, double maxValue)
    {
        if (!(ratio > 0 && ratio <= 1)) throw new ArgumentOutOfRangeException(nameof(ratio), ratio, "dynamic_thresholding_ratio must lie in (0, 1].");
        var data = x0.ToArray();
        int rows = x0.Rank > 1 ? x0.Dim(0) : 1;
        int n = data.Length / rows;
        var sorted = new double[n];
        for (int r = 0; r < rows; r++)
        {
            var row = data.AsSpan(r * n, n);
            for (int k = 0; k < n; k++) sorted[k] = Math.Abs((double)row[k]);
            Array.Sort(sorted);
            // torch.quantile's default linear interpolation between order statistics.
            double pos = ratio * (n - 1);
            int lo = (int)Math.Floor(pos), hi = Math.Min(lo + 1, n - 1);
            double q = sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
            double s = Math.Min(Math.Max(q, 1.0), maxValue); // torch.clamp(q, min=1, max=max_value)
            for (int k = 0; k < n; k++) row[k] = (float)(Math.Clamp(row[k], -s, s) / s);
        }
        x0.Device.CopyFromHost(System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()), x0);
    }
}
