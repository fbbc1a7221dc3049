namespace Engine.Core;

// The op surface. Every public method validates its arguments (F32, same device, shapes) and calls
// the protected *Core method that the device implements. All ops compute in float32 and write a
// caller-provided output, so callers control allocation (and reuse pooled tensors).
public abstract partial class Device
{
    // ---------------------------------------------------------------- GEMM

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
        CheckF32(a, nameof(a)); CheckDevice(b, nameof(b)); CheckF32(output, nameof(output));
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"MatMul needs rank >= 2 operands, got a {a} and b {b}.");
        int m = transposeA ? a.Dim(-1) : a.Dim(-2), k = transposeA ? a.Dim(-2) : a.Dim(-1);
        int kb = transposeB ? b.Dim(-1) : b.Dim(-2), n = transposeB ? b.Dim(-2) : b.Dim(-1);
        if (k != kb) throw new ArgumentException($"MatMul inner dimensions differ: a {a} (K={k}) and b {b} (K={kb}).");
        long batch = a.Length / ((long)m * k);
        long bBatch = b.Length / ((long)kb * n);
        if (bBatch != 1 && bBatch != batch) throw new ArgumentException($"MatMul batch of b {b} is neither 1 nor that of a {a}.");
        if (output.Length != batch * m * n || output.Dim(-1) != n)
            throw new ArgumentException($"MatMul output {output} should be [..., {m}, {n}] with {batch} batches.");
        if (bias is not null) { CheckF32(bias, nameof(bias)); if (bias.Length != n) throw new ArgumentException($"MatMul bias {bias} should have {n} elements."); }
        using var wide = WidenWeight(ref b);
        MatMulCore(a, b, output, (int)batch, m, n, k, transposeA, transposeB, bBatch == 1, bias, activation, alpha);
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
        MatMul(x.Reshape(rows, inF), weight, output.Reshape(rows, outF), transposeB: true, bias: bias, activation: activation);
    }

    // ---------------------------------------------------------------- convolution

    /// <summary>
    /// 2-D convolution (cross-correlation as in PyTorch): x [N, C, H, W], weight [O, C, kh, kw],
    /// bias [O] or null, output [N, O, Ho, Wo] with Ho = (H + 2 pad - kh) / stride + 1. The weight may be
    /// stored as F16 or BF16 (see <see cref="ReadsHalfWeights"/>); products accumulate in float32.
    /// </summary>
    public void Conv2d(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride = 1, int padding = 0)
    {
        CheckF32(x, nameof(x)); CheckDevice(weight, nameof(weight)); CheckF32(output, nameof(output));
        if (x.Rank != 4 || weight.Rank != 4 || output.Rank != 4) throw new ArgumentException($"Conv2d needs rank-4 x, weight, output; got {x}, {weight}, {output}.");
        if (stride < 1 || padding < 0) throw new ArgumentException($"Conv2d stride {stride} must be >= 1 and padding {padding} >= 0.");
        if (weight.Dim(1) != x.Dim(1)) throw new ArgumentException($"Conv2d weight {weight} expects {weight.Dim(1)} input channels, x {x} has {x.Dim(1)}.");
        int ho = (x.Dim(2) + 2 * padding - weight.Dim(2)) / stride + 1, wo = (x.Dim(3) + 2 * padding - weight.Dim(3)) / stride + 1;
        if (ho < 1 || wo < 1 || output.Dim(0) != x.Dim(0) || output.Dim(1) != weight.Dim(0) || output.Dim(2) != ho || output.Dim(3) != wo)
            throw new ArgumentException($"Conv2d output {output} should be [{x.Dim(0)}, {weight.Dim(0)}, {ho}, {wo}].");
        if (bias is not null) { CheckF32(bias, nameof(bias)); if (bias.Length != weight.Dim(0)) throw new ArgumentException($"Conv2d bias {bias} should have {weight.Dim(0)} elements."); }
        using var wide = WidenWeight(ref weight);
        Conv2dCore(x, weight, bias, output, stride, padding);
    }

    /// <summary>Implements <see cref="Conv2d"/>.</summary>
    protected abstract void Conv2dCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding);

    // ---------------------------------------------------------------- normalisation

    /// <summary>
    /// GroupNorm over x [N, C, ...] with <paramref name="groups"/> groups (biased variance, as
    /// PyTorch), optional per-channel affine, optionally followed by SiLU.
    /// </summary>
    public void GroupNorm(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu = false)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output)); CheckSameShape(x, output, "GroupNorm");
        if (x.Rank < 2) throw new ArgumentException($"GroupNorm needs [N, C, ...], got {x}.");
        int c = x.Dim(1);
        if (groups < 1 || c % groups != 0) throw new ArgumentException($"GroupNorm: {c} channels are not divisible into {groups} groups.");
        CheckVector(gamma, c, "GroupNorm gamma"); CheckVector(beta, c, "GroupNorm beta");
        GroupNormCore(x, gamma, beta, output, groups, eps, silu);
    }

    /// <summary>Implements <see cref="GroupNorm"/>.</summary>
    protected abstract void GroupNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, int groups, float eps, bool silu);

    /// <summary>LayerNorm over the last dimension with optional affine (gamma, beta: [D] or null).</summary>
    public void LayerNorm(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output)); CheckSameShape(x, output, "LayerNorm");
        int d = x.Dim(-1);
        CheckVector(gamma, d, "LayerNorm gamma"); CheckVector(beta, d, "LayerNorm beta");
        LayerNormCore(x, gamma, beta, output, eps);
    }

    /// <summary>Implements <see cref="LayerNorm"/>.</summary>
    protected abstract void LayerNormCore(Tensor x, Tensor? gamma, Tensor? beta, Tensor output, float eps);

    // ---------------------------------------------------------------- attention and softmax

    /// <summary>
    /// Multi-head scaled dot-product attention without materialising the Lq x Lk matrix:
    /// q [B, Lq, H*d], k and v [B, Lk, H*d], output [B, Lq, H*d]; per head
    /// softmax(q k^T * scale) v. Heads are contiguous slices of the last dimension, as diffusers
    /// lays out the projections.
    /// </summary>
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale)
    {
        CheckF32(q, nameof(q)); CheckF32(k, nameof(k)); CheckF32(v, nameof(v)); CheckF32(output, nameof(output));
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3) throw new ArgumentException($"Attention needs rank-3 q, k, v; got {q}, {k}, {v}.");
        int inner = q.Dim(2);
        if (heads < 1 || inner % heads != 0) throw new ArgumentException($"Attention: width {inner} is not divisible by {heads} heads.");
        if (k.Dim(0) != q.Dim(0) || v.Dim(0) != q.Dim(0) || k.Dim(2) != inner || v.Dim(2) != inner || v.Dim(1) != k.Dim(1))
            throw new ArgumentException($"Attention shapes disagree: q {q}, k {k}, v {v}.");
        CheckSameShape(q, output, "Attention");
        AttentionCore(q, k, v, output, heads, scale);
    }

    /// <summary>Implements <see cref="Attention"/>.</summary>
    protected abstract void AttentionCore(Tensor q, Tensor k, Tensor v, Tensor output, int heads, float scale);

    /// <summary>Softmax over the last dimension.</summary>
    public void Softmax(Tensor x, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output)); CheckSameShape(x, output, "Softmax");
        SoftmaxCore(x, output);
    }

    /// <summary>Implements <see cref="Softmax"/>.</summary>
    protected abstract void SoftmaxCore(Tensor x, Tensor output);

    // ---------------------------------------------------------------- element-wise

    /// <summary>output = act(x) element-wise (output may be x).</summary>
    public void Activate(Tensor x, Tensor output, Activation activation)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output)); CheckSameLength(x, output, "Activate");
        ActivateCore(x, output, activation);
    }

    /// <summary>Implements <see cref="Activate"/>.</summary>
    protected abstract void ActivateCore(Tensor x, Tensor output, Activation activation);

    /// <summary>GEGLU: x [..., 2D] is split into (h, g); output [..., D] = h * gelu_erf(g).</summary>
    public void Geglu(Tensor x, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output));
        int d = output.Dim(-1);
        if (x.Dim(-1) != 2 * d || x.Length != 2 * output.Length) throw new ArgumentException($"Geglu input {x} must be twice as wide as output {output}.");
        GegluCore(x, output);
    }

    /// <summary>Implements <see cref="Geglu"/>.</summary>
    protected abstract void GegluCore(Tensor x, Tensor output);

    /// <summary>
    /// output = a (op) b with NumPy broadcasting (ranks up to 6); output must have the broadcast
    /// shape and may alias a.
    /// </summary>
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        CheckF32(a, nameof(a)); CheckF32(b, nameof(b)); CheckF32(output, nameof(output));
        var shape = BroadcastShape(a.Shape, b.Shape);
        if (!output.Shape.SequenceEqual(shape)) throw new ArgumentException($"{op}: output {output} should be {Tensor.ShapeString(shape)}.");
        BinaryCore(op, a, b, output);
    }

    /// <summary>Implements <see cref="Binary"/>.</summary>
    protected abstract void BinaryCore(BinaryOp op, Tensor a, Tensor b, Tensor output);

    /// <summary>output = a + b (broadcasting).</summary>
    public void Add(Tensor a, Tensor b, Tensor output) => Binary(BinaryOp.Add, a, b, output);

    /// <summary>output = a * b (broadcasting).</summary>
    public void Mul(Tensor a, Tensor b, Tensor output) => Binary(BinaryOp.Mul, a, b, output);

    /// <summary>
    /// output = sum_i coefficients[i] * inputs[i], element-wise, all the same length; output may alias
    /// an input. This is the one fused kernel behind every sampler update.
    /// </summary>
    public void LinearCombination(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients)
    {
        CheckF32(output, nameof(output));
        if (inputs.Length != coefficients.Length || inputs.Length == 0 || inputs.Length > MaxLinearCombinationTerms)
            throw new ArgumentException($"LinearCombination takes 1..{MaxLinearCombinationTerms} inputs with one coefficient each; got {inputs.Length} inputs, {coefficients.Length} coefficients.");
        for (int i = 0; i < inputs.Length; i++) { CheckF32(inputs[i], $"inputs[{i}]"); CheckSameLength(inputs[i], output, "LinearCombination"); }
        LinearCombinationCore(output, inputs, coefficients);
    }

    /// <summary>Largest number of terms <see cref="LinearCombination"/> accepts.</summary>
    public const int MaxLinearCombinationTerms = 8;

    /// <summary>Implements <see cref="LinearCombination"/>.</summary>
    protected abstract void LinearCombinationCore(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients);

    /// <summary>output = a * b + c where a, b, c are scalars broadcast: output = alpha * x + beta (element-wise).</summary>
    public void Affine(Tensor x, Tensor output, float alpha, float beta)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output)); CheckSameLength(x, output, "Affine");
        AffineCore(x, output, alpha, beta);
    }

    /// <summary>Implements <see cref="Affine"/>.</summary>
    protected abstract void AffineCore(Tensor x, Tensor output, float alpha, float beta);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public void Fill(Tensor output, float value)
    {
        CheckF32(output, nameof(output));
        FillCore(output, value);
    }

    /// <summary>Implements <see cref="Fill"/>.</summary>
    protected abstract void FillCore(Tensor output, float value);

    /// <summary>Copies src into dst (same length), converting between storage dtypes.</summary>
    public void Copy(Tensor src, Tensor dst)
    {
        CheckDevice(src, nameof(src)); CheckDevice(dst, nameof(dst)); CheckSameLength(src, dst, "Copy");
        CopyCore(src, dst);
    }

    /// <summary>A new tensor (owned by the caller) of <paramref name="source"/>'s shape holding its values stored as <paramref name="dtype"/>.</summary>
    public Tensor Convert(Tensor source, DType dtype)
    {
        CheckDevice(source, nameof(source));
        var result = Allocate(dtype, source.ShapeArray());
        try { CopyCore(source, result); }
        catch { result.Dispose(); throw; }
        return result;
    }

    /// <summary>Implements <see cref="Copy"/> (any dtype pair).</summary>
    protected abstract void CopyCore(Tensor src, Tensor dst);

    // ---------------------------------------------------------------- diffusion-specific

    /// <summary>
    /// diffusers get_timestep_embedding: half = dim / 2, f_i = exp(-ln(maxPeriod) i / (half - shift)),
    /// e = scale * t * f (float32 arithmetic like torch), [sin, cos] or [cos, sin] when flipped; odd
    /// dims get a zero last column. timesteps: [N]; output: [N, dim].
    /// </summary>
    public void TimestepEmbedding(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale = 1f, float maxPeriod = 10000f)
    {
        CheckF32(timesteps, nameof(timesteps)); CheckF32(output, nameof(output));
        if (output.Rank != 2 || output.Dim(0) != timesteps.Length) throw new ArgumentException($"TimestepEmbedding output {output} should be [{timesteps.Length}, dim].");
        if (output.Dim(1) < 2) throw new ArgumentException($"TimestepEmbedding needs dim >= 2, got {output.Dim(1)}.");
        TimestepEmbeddingCore(timesteps, output, flipSinToCos, downscaleFreqShift, scale, maxPeriod);
    }

    /// <summary>Implements <see cref="TimestepEmbedding"/>.</summary>
    protected abstract void TimestepEmbeddingCore(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale, float maxPeriod);

    /// <summary>adaLN modulation: output[b, l, :] = x[b, l, :] * (1 + scale[b, :]) + shift[b, :]; x [B, L, D], shift/scale [B, D].</summary>
    public void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(shift, nameof(shift)); CheckF32(scale, nameof(scale)); CheckF32(output, nameof(output));
        CheckRowVectors(x, shift, "Modulate shift"); CheckRowVectors(x, scale, "Modulate scale"); CheckSameShape(x, output, "Modulate");
        ModulateCore(x, shift, scale, output);
    }

    /// <summary>Implements <see cref="Modulate"/>.</summary>
    protected abstract void ModulateCore(Tensor x, Tensor shift, Tensor scale, Tensor output);

    /// <summary>adaLN gating: output[b, l, :] = residual[b, l, :] + gate[b, :] * x[b, l, :]; output may alias residual.</summary>
    public void GatedAdd(Tensor residual, Tensor x, Tensor gate, Tensor output)
    {
        CheckF32(residual, nameof(residual)); CheckF32(x, nameof(x)); CheckF32(gate, nameof(gate)); CheckF32(output, nameof(output));
        CheckSameShape(x, residual, "GatedAdd"); CheckSameShape(x, output, "GatedAdd"); CheckRowVectors(x, gate, "GatedAdd gate");
        GatedAddCore(residual, x, gate, output);
    }

    /// <summary>Implements <see cref="GatedAdd"/>.</summary>
    protected abstract void GatedAddCore(Tensor residual, Tensor x, Tensor gate, Tensor output);

    /// <summary>Nearest-neighbour 2x upsampling: x [N, C, H, W] to output [N, C, 2H, 2W].</summary>
    public void UpsampleNearest2x(Tensor x, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output));
        if (x.Rank != 4 || output.Rank != 4 || output.Dim(0) != x.Dim(0) || output.Dim(1) != x.Dim(1) || output.Dim(2) != 2 * x.Dim(2) || output.Dim(3) != 2 * x.Dim(3))
            throw new ArgumentException($"UpsampleNearest2x: output {output} should be twice the spatial size of {x}.");
        UpsampleNearest2xCore(x, output);
    }

    /// <summary>Implements <see cref="UpsampleNearest2x"/>.</summary>
    protected abstract void UpsampleNearest2xCore(Tensor x, Tensor output);

    /// <summary>Channel concatenation: a [N, Ca, ...] and b [N, Cb, ...] to output [N, Ca + Cb, ...].</summary>
    public void ConcatChannels(Tensor a, Tensor b, Tensor output)
    {
        CheckF32(a, nameof(a)); CheckF32(b, nameof(b)); CheckF32(output, nameof(output));
        if (a.Rank < 2 || a.Rank != b.Rank || a.Rank != output.Rank || a.Dim(0) != b.Dim(0) || output.Dim(0) != a.Dim(0) || output.Dim(1) != a.Dim(1) + b.Dim(1)
            || a.Length / a.Dim(1) != b.Length / Math.Max(1, b.Dim(1)) || output.Length != a.Length + b.Length)
            throw new ArgumentException($"ConcatChannels: cannot join {a} and {b} into {output}.");
        ConcatChannelsCore(a, b, output);
    }

    /// <summary>Implements <see cref="ConcatChannels"/>.</summary>
    protected abstract void ConcatChannelsCore(Tensor a, Tensor b, Tensor output);

    /// <summary>
    /// Channel slice: output [N, Co, ...] = x[:, start : start + Co, ...] for x [N, C, ...] (e.g. the
    /// prediction half of a learned-sigma DiT output).
    /// </summary>
    public void SliceChannels(Tensor x, int start, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output));
        if (x.Rank < 2 || output.Rank != x.Rank || output.Dim(0) != x.Dim(0) || start < 0 || start + output.Dim(1) > x.Dim(1)
            || x.Length / Math.Max(1, (long)x.Dim(0) * x.Dim(1)) != output.Length / Math.Max(1, (long)output.Dim(0) * output.Dim(1)))
            throw new ArgumentException($"SliceChannels: cannot take channels [{start}, {start + (output.Rank > 1 ? output.Dim(1) : 0)}) of {x} into {output}.");
        SliceChannelsCore(x, start, output);
    }

    /// <summary>Implements <see cref="SliceChannels"/>.</summary>
    protected abstract void SliceChannelsCore(Tensor x, int start, Tensor output);

    /// <summary>Batched transpose of the last two dimensions: x [B, M, N] to output [B, N, M] (e.g. NCHW to N(HW)C).</summary>
    public void Transpose(Tensor x, Tensor output)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output));
        if (x.Rank != 3 || output.Rank != 3 || output.Dim(0) != x.Dim(0) || output.Dim(1) != x.Dim(2) || output.Dim(2) != x.Dim(1))
            throw new ArgumentException($"Transpose: output {output} should be x {x} with the last two dimensions swapped.");
        TransposeCore(x, output);
    }

    /// <summary>Implements <see cref="Transpose"/>.</summary>
    protected abstract void TransposeCore(Tensor x, Tensor output);

    /// <summary>
    /// Patchify: x [N, C, H, W] to tokens [N, (H/p)(W/p), p*p*C], each token laid out (row in patch,
    /// column in patch, channel), the layout DiT's unpatchify expects.
    /// </summary>
    public void Patchify(Tensor x, Tensor output, int patch)
    {
        CheckF32(x, nameof(x)); CheckF32(output, nameof(output));
        if (x.Rank != 4 || patch < 1 || x.Dim(2) % patch != 0 || x.Dim(3) % patch != 0) throw new ArgumentException($"Patchify: {x} is not divisible into {patch}x{patch} patches.");
        int tokens = (x.Dim(2) / patch) * (x.Dim(3) / patch);
        if (output.Rank != 3 || output.Dim(0) != x.Dim(0) || output.Dim(1) != tokens || output.Dim(2) != patch * patch * x.Dim(1))
            throw new ArgumentException($"Patchify: output {output} should be [{x.Dim(0)}, {tokens}, {patch * patch * x.Dim(1)}].");
        PatchifyCore(x, output, patch, unpatchify: false);
    }

    /// <summary>Inverse of <see cref="Patchify"/>: tokens [N, h*w, p*p*C] to output [N, C, h*p, w*p].</summary>
    public void Unpatchify(Tensor tokens, Tensor output, int patch)
    {
        CheckF32(tokens, nameof(tokens)); CheckF32(output, nameof(output));
        if (output.Rank != 4 || patch < 1 || output.Dim(2) % patch != 0 || output.Dim(3) % patch != 0) throw new ArgumentException($"Unpatchify: {output} is not divisible into {patch}x{patch} patches.");
        int count = (output.Dim(2) / patch) * (output.Dim(3) / patch);
        if (tokens.Rank != 3 || tokens.Dim(0) != output.Dim(0) || tokens.Dim(1) != count || tokens.Dim(2) != patch * patch * output.Dim(1))
            throw new ArgumentException($"Unpatchify: tokens {tokens} should be [{output.Dim(0)}, {count}, {patch * patch * output.Dim(1)}].");
        PatchifyCore(output, tokens, patch, unpatchify: true);
    }

    /// <summary>Implements <see cref="Patchify"/> (image to tokens) and, when <paramref name="unpatchify"/>, the inverse (tokens to image).</summary>
    protected abstract void PatchifyCore(Tensor image, Tensor tokens, int patch, bool unpatchify);

    /// <summary>
    /// Fills output [N, ...] with standard normal noise from Philox keyed by (seed, sample index,
    /// step): row i is sample <paramref name="firstSampleIndex"/> + i, so a sample's noise does not
    /// depend on the batch it is drawn in.
    /// </summary>
    public void RandomNormal(Tensor output, ulong seed, int firstSampleIndex, int step)
    {
        CheckF32(output, nameof(output));
        if (output.Rank < 1 || firstSampleIndex < 0 || step < 0) throw new ArgumentException($"RandomNormal: bad output {output}, sample index {firstSampleIndex} or step {step}.");
        RandomNormalCore(output, seed, firstSampleIndex, step);
    }

    /// <summary>Implements <see cref="RandomNormal"/>.</summary>
    protected abstract void RandomNormalCore(Tensor output, ulong seed, int firstSampleIndex, int step);

    // ---------------------------------------------------------------- validation helpers

    /// <summary>Throws unless t is a float32 tensor on this device.</summary>
    protected void CheckF32(Tensor t, string name)
    {
        CheckDevice(t, name);
        if (t.DType != DType.F32) throw new ArgumentException($"Tensor '{name}' {t} must be F32 for compute; convert it with Copy first.");
    }

    private void CheckVector(Tensor? v, int length, string what)
    {
        if (v is null) return;
        CheckF32(v, what);
        if (v.Length != length) throw new ArgumentException($"{what} {v} should have {length} elements.");
    }

    private static void CheckSameShape(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.SequenceEqual(b.Shape)) throw new ArgumentException($"{op}: shapes differ: {a} and {b}.");
    }

    private static void CheckSameLength(Tensor a, Tensor b, string op)
    {
        if (a.Length != b.Length) throw new ArgumentException($"{op}: lengths differ: {a} and {b}.");
    }

    private static void CheckRowVectors(Tensor x, Tensor v, string what)
    {
        if (x.Rank != 3 || v.Length != (long)x.Dim(0) * x.Dim(2))
            throw new ArgumentException($"{what} {v} should be [{x.Dim(0)}, {x.Dim(-1)}] for x {x} ([B, L, D]).");
    }

    /// <summary>NumPy broadcast of two shapes; throws when they are incompatible.</summary>
    public static int[] BroadcastShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        int rank = Math.Max(a.Length, b.Length);
        var result = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int da = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
            int db = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
            if (da != db && da != 1 && db != 1)
                throw new ArgumentException($"Shapes {Tensor.ShapeString(a)} and {Tensor.ShapeString(b)} do not broadcast.");
            result[i] = da == 1 ? db : da;
        }
        return result;
    }

    /// <summary>Element strides of an operand of <paramref name="shape"/> over the broadcast <paramref name="outShape"/>, 0 along broadcast dimensions.</summary>
    protected static long[] BroadcastStrides(ReadOnlySpan<int> shape, int[] outShape)
    {
        int rank = outShape.Length;
        var strides = new long[rank];
        long stride = 1;
        for (int i = rank - 1; i >= 0; i--)
        {
            int src = i - (rank - shape.Length);
            int dim = src >= 0 ? shape[src] : 1;
            strides[i] = dim == 1 && outShape[i] != 1 ? 0 : stride;
            stride *= dim;
        }
        return strides;
    }
}
