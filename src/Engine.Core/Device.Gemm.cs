using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// Batched matrix product: output = act(alpha * op(a) op(b) + bias).
    /// a: [..., M, K] ([..., K, M] when <paramref name="transposeA"/>); b: [..., K, N] ([..., N, K]
    /// when <paramref name="transposeB"/>) with the same leading (batch) dimensions as a, or rank 2
    /// (shared by every batch); output: [..., M, N]; bias: [N] or null. b, the weight operand of Linear,
    /// may be stored as F16 or BF16 (see <see cref="ReadsHalfWeights"/>); products accumulate in float32.
    /// </summary>
    public void MatMul(Tensor a, Tensor b, Tensor output, bool transposeA = false, bool transposeB = false,
        Tensor? bias = null, Activation activation = Activation.None, float alpha = 1f)
    {
        CheckCompute(a, nameof(a)); CheckDevice(b, nameof(b)); CheckCompute(output, nameof(output));
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"MatMul needs rank >= 2 operands, got a {a} and b {b}.");
        int m = transposeA ? a.Dim(-1) : a.Dim(-2), k = transposeA ? a.Dim(-2) : a.Dim(-1);
        int kb = transposeB ? b.Dim(-1) : b.Dim(-2), n = transposeB ? b.Dim(-2) : b.Dim(-1);
        if (k != kb) throw new ArgumentException($"MatMul inner dimensions differ: a {a} (K={k}) and b {b} (K={kb}).");
        long batch = a.Length / ((long)m * k);
        long bBatch = b.Length / ((long)kb * n);
        if (bBatch != 1 && bBatch != batch) throw new ArgumentException($"MatMul batch of b {b} is neither 1 nor that of a {a}.");
        if (output.Length != batch * m * n || output.Dim(-1) != n)
            throw new ArgumentException($"MatMul output {output} should be [..., {m}, {n}] with {batch} batches.");
        if (bias is not null) { CheckCompute(bias, nameof(bias)); if (bias.Length != n) throw new ArgumentException($"MatMul bias {bias} should have {n} elements."); }
        using var profile = Profiler is null ? default : BeginOp(OpKeys.MatMul(batch, m, n, k, transposeA, transposeB));
        using var wide = WidenWeight(ref b);
        if (AnyHalf(a, bias, output) && !HandlesHalfActivations("MatMul", a, output))
        {
            using var s = Stage();
            MatMulCore(s.In(a), b, s.Out(output), (int)batch, m, n, k, transposeA, transposeB, bBatch == 1, s.InOptional(bias), activation, alpha);
            s.Commit();
        }
        else MatMulCore(a, b, output, (int)batch, m, n, k, transposeA, transposeB, bBatch == 1, bias, activation, alpha);
    }

    /// <summary>
    /// Whether the device's GEMM and convolution read F16 / BF16 weight operands directly (widening
    /// them in the kernel). Otherwise such weights are widened into a pooled float32 copy for the call,
    /// so half-precision storage still halves resident weight memory on every device.
    /// </summary>
    protected virtual bool ReadsHalfWeights => false;

    /// <summary>Replaces a half-precision weight by a float32 copy where the device needs one; returns the copy to dispose.</summary>
    private Tensor? WidenWeight(ref Tensor weight)
    {
        if (weight.DType == DType.F32 || ReadsHalfWeights) return null;
        weight = Convert(weight, DType.F32);
        return weight;
    }

    /// <summary>Implements <see cref="MatMul"/>; shapes are already validated.</summary>
    protected abstract void MatMulCore(Tensor a, Tensor b, Tensor output, int batch, int m, int n, int k,
        bool transposeA, bool transposeB, bool broadcastB, Tensor? bias, Activation activation, float alpha);

    /// <summary>
    /// PyTorch Linear: output[..., out] = act(x[..., in] weight^T + bias); weight: [out, in], F32, F16 or BF16.
    /// </summary>
    public void Linear(Tensor x, Tensor weight, Tensor? bias, Tensor output, Activation activation = Activation.None)
    {
        if (weight.Rank != 2) throw new ArgumentException($"Linear weight must be [out, in], got {weight}.");
        int inF = weight.Dim(1), outF = weight.Dim(0);
        if (x.Dim(-1) != inF) throw new ArgumentException($"Linear input {x} has {x.Dim(-1)} features, weight {weight} expects {inF}.");
        if (output.Dim(-1) != outF || output.Length / outF != x.Length / inF)
            throw new ArgumentException($"Linear output {output} should have {x.Length / inF} rows of {outF}.");
        int rows = (int)(x.Length / inF);
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Linear(rows, weight, activation));
        LinearCore(x.Reshape(rows, inF), weight, bias, output.Reshape(rows, outF), activation);
    }

    /// <summary>
    /// The GEGLU projection of a feed-forward layer: [h | g] = x weight^T + bias with weight [2D, in], then
    /// output[..., D] = h * gelu_erf(g), as <see cref="Linear"/> followed by <see cref="Geglu"/>. A device may
    /// fuse the two so that the doubled projection is never stored whole.
    /// </summary>
    public void LinearGeglu(Tensor x, Tensor weight, Tensor? bias, Tensor output)
    {
        if (weight.Rank != 2 || weight.Dim(0) % 2 != 0) throw new ArgumentException($"LinearGeglu weight must be [2D, in], got {weight}.");
        int inF = weight.Dim(1), d = weight.Dim(0) / 2;
        if (x.Dim(-1) != inF) throw new ArgumentException($"LinearGeglu input {x} has {x.Dim(-1)} features, weight {weight} expects {inF}.");
        if (output.Dim(-1) != d || output.Length / d != x.Length / inF)
            throw new ArgumentException($"LinearGeglu output {output} should have {x.Length / inF} rows of {d}.");
        if (bias is not null && bias.Length != 2 * d) throw new ArgumentException($"LinearGeglu bias {bias} should have {2 * d} elements.");
        int rows = (int)(x.Length / inF);
        using var profile = Profiler is null ? default : BeginOp(OpKeys.LinearGeglu(rows, weight));
        LinearGegluCore(x.Reshape(rows, inF), weight, bias, output.Reshape(rows, d));
    }

    /// <summary>Implements <see cref="LinearGeglu"/> on x [rows, in]: by default <see cref="Linear"/> into a temporary, then <see cref="Geglu"/>.</summary>
    protected virtual void LinearGegluCore(Tensor x, Tensor weight, Tensor? bias, Tensor output)
    {
        using var h = Allocate(output.DType, x.Dim(0), weight.Dim(0));
        Linear(x, weight, bias, h);
        Geglu(h, output);
    }

    /// <summary>
    /// Implements <see cref="Linear"/> on x [rows, in] (weight checked, bias not yet): by default the
    /// <see cref="MatMul"/> with transposed weight. A device overrides it to treat the weight as a
    /// constant (e.g. converted once into a packed reduced-precision layout).
    /// </summary>
    protected virtual void LinearCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, Activation activation) =>
        MatMul(x, weight, output, transposeB: true, bias: bias, activation: activation);
}
