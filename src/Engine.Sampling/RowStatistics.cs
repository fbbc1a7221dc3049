using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// Per-row mean and standard deviation of a [B, N] tensor with device ops only. Row sums are a MatMul
/// against a ones vector; the population standard deviation uses LayerNorm:
/// sum_j LN(x)_j x_j = sum_j (x_j - m)^2 / sd = N sd, so sd = rowsum(LN(x) * x) / N. Buffers are
/// allocated on first use and reused.
/// </summary>
public sealed class RowStatistics : IDisposable
{
    // LayerNorm's epsilon: sd comes out as var / sqrt(var + eps), exact to eps / (2 var) relative.
    private const float NormEps = 1e-12f;
    private Tensor? _ones, _scratch;

    /// <summary>Writes the per-row mean of <paramref name="x"/> [B, N] into <paramref name="mean"/> [B, 1].</summary>
    public void Mean(Tensor x, Tensor mean)
    {
        int n = x.Dim(-1);
        x.Device.MatMul(x, Ones(x.Device, n), mean, alpha: 1f / n);
    }

    /// <summary>Writes the per-row population standard deviation of <paramref name="x"/> [B, N] into <paramref name="std"/> [B, 1].</summary>
    public void Std(Tensor x, Tensor std)
    {
        var d = x.Device;
        int n = x.Dim(-1);
        var s = Scratch(x);
        d.LayerNorm(x, null, null, s, NormEps);
        d.Mul(s, x, s);
        d.MatMul(s, Ones(d, n), std, alpha: 1f / n);
    }

    /// <summary>Writes LayerNorm(x) (zero mean, unit variance per row) into <paramref name="output"/>.</summary>
    public static void Standardize(Tensor x, Tensor output) => x.Device.LayerNorm(x, null, null, output, NormEps);

    private Tensor Ones(Device d, int n)
    {
        if (_ones is null || _ones.Length != n || !ReferenceEquals(_ones.Device, d))
        {
            _ones?.Dispose();
            _ones = d.Allocate(n, 1);
            d.Fill(_ones, 1f);
        }
        return _ones;
    }

    private Tensor Scratch(Tensor like)
    {
        if (_scratch is null || _scratch.Length < like.Length || !ReferenceEquals(_scratch.Device, like.Device))
        {
            _scratch?.Dispose();
            _scratch = like.Device.Allocate((int)like.Length);
        }
        return _scratch.Slice(0, (int)like.Length).Reshape(like.ShapeArray());
    }

    /// <summary>Releases the buffers.</summary>
    public void Dispose() { _ones?.Dispose(); _scratch?.Dispose(); _ones = _scratch = null; }
}
