using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>
/// Output shape (padded to rank 6 with leading ones) and the strides of two operands over it
/// (0 along broadcast dimensions), for <see cref="PointwiseKernels.BinaryBroadcast"/>.
/// </summary>
public struct BroadcastShape
{
    /// <summary>Output dimensions, outermost first.</summary>
    public int D0, D1, D2, D3, D4, D5;
    /// <summary>Element strides of operand a.</summary>
    public long A0, A1, A2, A3, A4, A5;
    /// <summary>Element strides of operand b.</summary>
    public long B0, B1, B2, B3, B4, B5;
}

/// <summary>Scalar arguments of <see cref="PointwiseKernels.TimestepEmbedding"/>.</summary>
public struct TimestepParams
{
    /// <summary>Embedding width and half of it.</summary>
    public int Dim, Half;
    /// <summary>1 for [cos, sin] instead of [sin, cos].</summary>
    public int Flip;
    /// <summary>-ln(maxPeriod), computed on the host in float32.</summary>
    public float LogPeriod;
    /// <summary>diffusers downscale_freq_shift.</summary>
    public float Shift;
    /// <summary>Multiplier of the arguments.</summary>
    public float Scale;
}

/// <summary>
/// Up to eight input views and their coefficients for <see cref="PointwiseKernels.LinearCombination"/>;
/// unused slots repeat a valid view and are never read (Count says how many are live).
/// </summary>
public struct LinearTerms
{
    /// <summary>Input views.</summary>
    public ArrayView<float> X0, X1, X2, X3, X4, X5, X6, X7;
    /// <summary>Coefficients.</summary>
    public float C0, C1, C2, C3, C4, C5, C6, C7;
    /// <summary>Number of live terms, 1 to 8.</summary>
    public int Count;
}

/// <summary>
/// Element-wise kernels: activations, broadcast arithmetic, affine maps, embeddings, modulation and the
/// fused sampler update. All use the implicit (auto-grouped) launch: one thread per output element over a
/// 1-D index space of the given length, group size chosen by ILGPU.
/// </summary>
public static class PointwiseKernels
{
    /// <summary>o[i] = value.</summary>
    public static void Fill(Index1D i, ArrayView<float> o, float value) => o[i] = value;

    /// <summary>o[i] = act(x[i]) with <see cref="ScalarMath.Activate"/>.</summary>
    public static void Activate(Index1D i, ArrayView<float> x, ArrayView<float> o, Activation kind) =>
        ActivateAny(i, new F32Weights(x), new F32Output(o), kind);

    /// <summary>
    /// <see cref="Activate"/> on any storage (as <see cref="BinaryAny{TA, TB, TO}"/>, and so every *Any kernel here): the
    /// input widened exactly, the result rounded once to the output's storage.
    /// </summary>
    public static void ActivateAny<TX, TO>(Index1D i, TX x, TO o, Activation kind) where TX : struct, IWeightView where TO : struct, IOutputView =>
        o.Write(i, ScalarMath.Activate(x.Read(i), kind));

    /// <summary>GEGLU over rows of 2d: o[r, j] = x[r, j] * gelu_erf(x[r, d + j]); index over o.</summary>
    public static void Geglu(Index1D i, ArrayView<float> x, ArrayView<float> o, int d) => GegluAny(i, new F32Weights(x), new F32Output(o), d);

    /// <summary><see cref="Geglu"/> on any storage.</summary>
    public static void GegluAny<TX, TO>(Index1D i, TX x, TO o, int d) where TX : struct, IWeightView where TO : struct, IOutputView
    {
        int r = i / d, j = i - r * d;
        long src = (long)r * 2 * d + j;
        o.Write(i, x.Read(src) * ScalarMath.GeluErf(x.Read(src + d)));
    }

    /// <summary>Applies <paramref name="op"/> to a and b.</summary>
    public static float Apply(BinaryOp op, float a, float b) => op == BinaryOp.Add ? a + b : op == BinaryOp.Sub ? a - b : op == BinaryOp.Mul ? a * b : a / b;

    /// <summary>o[i] = a[i] (op) b[i] for equal lengths.</summary>
    public static void Binary(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, BinaryOp op) =>
        BinaryAny(i, new F32Weights(a), new F32Weights(b), new F32Output(o), op);

    /// <summary>o[i] = a[ia] (op) b[ib] with NumPy broadcasting: i is split into rank-6 coordinates.</summary>
    public static void BinaryBroadcast(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, BroadcastShape s, BinaryOp op) =>
        BinaryBroadcastAny(i, new F32Weights(a), new F32Weights(b), new F32Output(o), s, op);

    /// <summary>
    /// <see cref="Binary"/> on any storage (float32, f16, bf16 per operand): operands widened exactly, the result
    /// rounded once to the output's storage, so half tensors get the float32 kernel's result on their values without
    /// float32 copies around the op.
    /// </summary>
    public static void BinaryAny<TA, TB, TO>(Index1D i, TA a, TB b, TO o, BinaryOp op)
        where TA : struct, IWeightView where TB : struct, IWeightView where TO : struct, IOutputView =>
        o.Write(i, Apply(op, a.Read(i), b.Read(i)));

    /// <summary><see cref="BinaryBroadcast"/> on any storage, as <see cref="BinaryAny{TA, TB, TO}"/>.</summary>
    public static void BinaryBroadcastAny<TA, TB, TO>(Index1D i, TA a, TB b, TO o, BroadcastShape s, BinaryOp op)
        where TA : struct, IWeightView where TB : struct, IWeightView where TO : struct, IOutputView
    {
        long rem = i, ia = 0, ib = 0, c;
        c = rem % s.D5; rem /= s.D5; ia += c * s.A5; ib += c * s.B5;
        c = rem % s.D4; rem /= s.D4; ia += c * s.A4; ib += c * s.B4;
        c = rem % s.D3; rem /= s.D3; ia += c * s.A3; ib += c * s.B3;
        c = rem % s.D2; rem /= s.D2; ia += c * s.A2; ib += c * s.B2;
        c = rem % s.D1; rem /= s.D1; ia += c * s.A1; ib += c * s.B1;
        c = rem % s.D0; ia += c * s.A0; ib += c * s.B0;
        o.Write(i, Apply(op, a.Read(ia), b.Read(ib)));
    }

    /// <summary>o[i] = alpha * x[i] + beta (rounded as the CPU device: product, then sum).</summary>
    public static void Affine(Index1D i, ArrayView<float> x, ArrayView<float> o, float alpha, float beta) =>
        AffineAny(i, new F32Weights(x), new F32Output(o), alpha, beta);

    /// <summary><see cref="Affine"/> on any storage.</summary>
    public static void AffineAny<TX, TO>(Index1D i, TX x, TO o, float alpha, float beta) where TX : struct, IWeightView where TO : struct, IOutputView
    {
        float m = x.Read(i) * alpha;
        o.Write(i, m + beta);
    }

    /// <summary>
    /// diffusers timestep embedding in float32: index over [N, half]; f = exp(logPeriod * j /
    /// (half - shift)), e = scale * (t * f); writes sin and cos halves (and a zero last column for odd
    /// dims). The argument is reduced by a multiple of 2 pi in double first, so backends whose sin/cos
    /// lose accuracy for large arguments still agree with the CPU device.
    /// </summary>
    public static void TimestepEmbedding(Index1D i, ArrayView<float> timesteps, ArrayView<float> o, TimestepParams p)
    {
        int n = i / p.Half, j = i - n * p.Half;
        float exponent = p.LogPeriod * j / (p.Half - p.Shift);
        float e = p.Scale * (timesteps[n] * ScalarMath.ExpAccurate(exponent));
        double turns = Math.Floor(e * 0.15915494309189535 + 0.5);
        float reduced = (float)(e - turns * 6.283185307179586);
        float sn = MathF.Sin(reduced), cs = MathF.Cos(reduced);
        long row = (long)n * p.Dim;
        o[row + j] = p.Flip != 0 ? cs : sn;
        o[row + p.Half + j] = p.Flip != 0 ? sn : cs;
        if (j == 0 && (p.Dim & 1) == 1) o[row + p.Dim - 1] = 0f;
    }

    /// <summary>adaLN: index over x [B, L, D]: o = x * (1 + scale[b, :]) + shift[b, :].</summary>
    public static void Modulate(Index1D i, ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> o, int l, int d) =>
        ModulateAny(i, new F32Weights(x), shift, scale, new F32Output(o), l, d);

    /// <summary><see cref="Modulate"/> with x and o on any storage (shift and scale float32).</summary>
    public static void ModulateAny<TX, TO>(Index1D i, TX x, ArrayView<float> shift, ArrayView<float> scale, TO o, int l, int d)
        where TX : struct, IWeightView where TO : struct, IOutputView
    {
        int col = i % d, b = i / (l * d);
        long v = (long)b * d + col;
        o.Write(i, x.Read(i) * (1f + scale[v]) + shift[v]);
    }

    /// <summary>adaLN gate: index over x [B, L, D]: o = residual + gate[b, :] * x.</summary>
    public static void GatedAdd(Index1D i, ArrayView<float> residual, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> o, int l, int d) =>
        GatedAddAny(i, new F32Weights(residual), new F32Weights(x), gate, new F32Output(o), l, d);

    /// <summary><see cref="GatedAdd"/> with residual, x and o on any storage (gate float32).</summary>
    public static void GatedAddAny<TX, TO>(Index1D i, TX residual, TX x, ArrayView<float> gate, TO o, int l, int d)
        where TX : struct, IWeightView where TO : struct, IOutputView
    {
        int col = i % d, b = i / (l * d);
        o.Write(i, residual.Read(i) + gate[(long)b * d + col] * x.Read(i));
    }

    /// <summary>
    /// output[i] = sum_{k &lt; Count} C_k * X_k[i], accumulated in term order (c0 x0, then fused
    /// multiply-adds), each thread reading all its inputs before writing, so output may alias any
    /// input. Implicit launch, one thread per element: the whole sampler step is one kernel.
    /// </summary>
    public static void LinearCombination(Index1D i, ArrayView<float> output, LinearTerms t)
    {
        float acc = t.C0 * t.X0[i];
        if (t.Count > 1) acc = ScalarMath.MultiplyAdd(t.X1[i], t.C1, acc);
        if (t.Count > 2) acc = ScalarMath.MultiplyAdd(t.X2[i], t.C2, acc);
        if (t.Count > 3) acc = ScalarMath.MultiplyAdd(t.X3[i], t.C3, acc);
        if (t.Count > 4) acc = ScalarMath.MultiplyAdd(t.X4[i], t.C4, acc);
        if (t.Count > 5) acc = ScalarMath.MultiplyAdd(t.X5[i], t.C5, acc);
        if (t.Count > 6) acc = ScalarMath.MultiplyAdd(t.X6[i], t.C6, acc);
        if (t.Count > 7) acc = ScalarMath.MultiplyAdd(t.X7[i], t.C7, acc);
        output[i] = acc;
    }

    /// <summary>
    /// marker[i / rowLength] = mark where x[i] is NaN or infinite and the marker is still 0. Threads of one
    /// launch that race write the same mark, and launches run in order, so the first mark set stays.
    /// </summary>
    public static void MarkNonFinite(Index1D i, ArrayView<float> x, ArrayView<float> marker, int rowLength, float mark)
    {
        float v = x[i];
        if (v - v == 0f) return;
        int row = i / rowLength;
        if (marker[row] == 0f) marker[row] = mark;
    }
}
