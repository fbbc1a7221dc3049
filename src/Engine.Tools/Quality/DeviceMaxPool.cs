using Engine.Core;

namespace Engine.Tools.Quality;

/// <summary>
/// Max pooling with kernel = stride = k on a <see cref="Device"/>, composed from existing device ops
/// (the op surface has no pooling op), so the data never leaves the device:
/// <list type="number">
/// <item>Patchify with patch k gathers each k x k window into one token: [N, L, k*k*C], laid out (window position, channel).</item>
/// <item>Viewing the tokens as [1, N*L, k*k*C] and transposing gives [k*k, C, N, L]: each window
/// position becomes a contiguous slice of the outer dimension.</item>
/// <item>The running maximum over the k*k slices uses max(a, b) = b + relu(a - b) (Sub, Relu, Add).</item>
/// <item>Two transposes turn the (C, N, L) result back into NCHW: [1, C, N*L] to [N*L, C] = [N, L, C], then [N, C, L].</item>
/// </list>
/// b + relu(a - b) may differ from max(a, b) by a rounding of a - b (exact when a and b are within a
/// factor of two, Sterbenz), far inside the 1e-4 tolerance of an evaluation metric.
/// </summary>
internal static class DeviceMaxPool
{
    /// <summary>output [N, C, H/k, W/k] = max over k x k windows of x [N, C, H, W]; H and W must be multiples of k.</summary>
    public static void Apply(Device device, Tensor x, Tensor output, int k)
    {
        int n = x.Dim(0), c = x.Dim(1), h = x.Dim(2), w = x.Dim(3);
        if (h % k != 0 || w % k != 0) throw new ArgumentException($"Max pool {k}x{k}: input {x} is not a multiple of the kernel.");
        int ho = h / k, wo = w / k, l = ho * wo, window = k * k;
        if (output.Dim(0) != n || output.Dim(1) != c || output.Dim(2) != ho || output.Dim(3) != wo)
            throw new ArgumentException($"Max pool {k}x{k}: output {output} should be [{n}, {c}, {ho}, {wo}].");
        if (window == 1) { device.Copy(x, output); return; }

        using var tokens = device.Allocate(n, l, window * c);
        device.Patchify(x, tokens, k);
        using var planes = device.Allocate(1, window * c, n * l);
        device.Transpose(tokens.Reshape(1, n * l, window * c), planes);
        var byPosition = planes.Reshape(window, c * n * l);
        var max = byPosition.Slice(0, 1); // accumulate in place: the planes are scratch
        using var diff = device.Allocate(1, c * n * l);
        for (int j = 1; j < window; j++)
        {
            device.Binary(BinaryOp.Sub, byPosition.Slice(j, 1), max, diff);
            device.Activate(diff, diff, Activation.Relu);
            device.Add(max, diff, max);
        }
        using var nlc = device.Allocate(1, n * l, c);
        device.Transpose(max.Reshape(1, c, n * l), nlc);
        device.Transpose(nlc.Reshape(n, l, c), output.Reshape(n, c, l));
    }
}
