namespace Engine.Core.Profiling;

/// <summary>
/// What one device op call is for the profile: its family (<c>conv3x3</c>, <c>linear</c>, <c>attention self</c>, ...),
/// its shape within the family, and the floating-point operations it does (0 where a rate means nothing, e.g. copies).
/// </summary>
/// <param name="Family">The op family; rows of the family table.</param>
/// <param name="Shape">The shape (and variant) within the family; rows of the shape table.</param>
/// <param name="Flops">Multiply-adds count as two; 0 for ops the profile gives no GFLOP/s.</param>
public readonly record struct OpKey(string Family, string Shape, double Flops);

/// <summary>Builds the <see cref="OpKey"/> of each device op from its arguments; only called while a profiler is attached.</summary>
public static class OpKeys
{
    /// <summary>Conv2d, family <c>conv{kh}x{kw}</c>; shape: input size, channels in -> out, stride, batch.</summary>
    public static OpKey Conv2d(Tensor x, Tensor weight, Tensor output, int stride)
    {
        int n = x.Dim(0), c = x.Dim(1), o = weight.Dim(0), kh = weight.Dim(2), kw = weight.Dim(3);
        double flops = 2.0 * n * o * output.Dim(2) * output.Dim(3) * c * kh * kw;
        string s = stride == 1 ? "" : $" s{stride}";
        return new($"conv{kh}x{kw}", $"{x.Dim(2)}x{x.Dim(3)} {c}->{o}{s} n{n}{WeightNote(weight)}", flops);
    }

    /// <summary>Linear (x [rows, in] times weight [out, in]^T): shape rows x in -> out.</summary>
    public static OpKey Linear(int rows, Tensor weight, Activation activation)
    {
        int inF = weight.Dim(1), outF = weight.Dim(0);
        string act = activation == Activation.None ? "" : $" +{activation.ToString().ToLowerInvariant()}";
        return new("linear", $"{rows}x{inF}->{outF}{act}{WeightNote(weight)}", 2.0 * rows * inF * outF);
    }

    /// <summary>Linear with the GEGLU epilogue (weight [2D, in], output D wide): shape rows x in -> 2D +geglu.</summary>
    public static OpKey LinearGeglu(int rows, Tensor weight)
    {
        int inF = weight.Dim(1), outF = weight.Dim(0);
        return new("linear", $"{rows}x{inF}->{outF} +geglu{WeightNote(weight)}", 2.0 * rows * inF * outF);
    }

    /// <summary>A batched MatMul outside Linear: shape batch, M x K x N.</summary>
    public static OpKey MatMul(long batch, int m, int n, int k, bool transposeA, bool transposeB) =>
        new("matmul", $"b{batch} {m}x{k}x{n}{(transposeA ? " tA" : "")}{(transposeB ? " tB" : "")}", 2.0 * batch * m * n * k);

    /// <summary>Attention, family self (Lq = Lk) or cross; shape: Lq, Lk, head width d, heads, batch.</summary>
    public static OpKey Attention(Tensor q, Tensor k, int heads)
    {
        int b = q.Dim(0), lq = q.Dim(1), lk = k.Dim(1), inner = q.Dim(2);
        string family = lq == lk ? "attention self" : "attention cross";
        // q k^T and p v: two products of Lq x Lk x d per head.
        return new(family, $"L{lq} Lk{lk} d{inner / heads} h{heads} b{b}", 4.0 * b * lq * lk * inner);
    }

    /// <summary>GroupNorm: channels x spatial size, groups, fused SiLU, batch.</summary>
    public static OpKey GroupNorm(Tensor x, int groups, bool silu) =>
        new("groupnorm", $"{x.Dim(1)}x{x.Length / ((long)x.Dim(0) * x.Dim(1))} g{groups}{(silu ? " +silu" : "")} n{x.Dim(0)}", 0);

    /// <summary>LayerNorm: rows x width.</summary>
    public static OpKey LayerNorm(Tensor x) => new("layernorm", $"{x.Length / x.Dim(-1)}x{x.Dim(-1)}", 0);

    /// <summary>Softmax: rows x width.</summary>
    public static OpKey Softmax(Tensor x) => new("softmax", $"{x.Length / x.Dim(-1)}x{x.Dim(-1)}", 0);

    /// <summary>Nearest 2x upsampling: channels and input size.</summary>
    public static OpKey Upsample(Tensor x) => new("upsample", $"{x.Dim(1)} {x.Dim(2)}x{x.Dim(3)}->2x n{x.Dim(0)}", 0);

    /// <summary>An element-wise op (activations, GEGLU, broadcasting arithmetic, fills, ...): its name and output shape.</summary>
    public static OpKey Pointwise(string op, Tensor output) => new("pointwise", $"{op} {Dims(output)}", 0);

    /// <summary>A data movement op (concatenation, slices, windows, transposes, patches): its name and output shape.</summary>
    public static OpKey Layout(string op, Tensor output) => new("layout", $"{op} {Dims(output)}", 0);

    /// <summary>A dtype conversion or copy (e.g. widening half weights per call): dtypes and shape.</summary>
    public static OpKey Convert(Tensor src, Tensor dst) =>
        new("convert", $"{src.DType.ToString().ToLowerInvariant()}->{dst.DType.ToString().ToLowerInvariant()} {Dims(dst)}", 0);

    /// <summary>Noise generation: output shape.</summary>
    public static OpKey Random(Tensor output) => new("random", Dims(output), 0);

    private static string Dims(Tensor t) => string.Join("x", t.ShapeArray());

    private static string WeightNote(Tensor weight) => weight.DType == DType.F32 ? "" : $" w{weight.DType.ToString().ToLowerInvariant()}";
}
