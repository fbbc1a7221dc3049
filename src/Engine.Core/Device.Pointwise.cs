using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>output = act(x) element-wise (output may be x).</summary>
    public void Activate(Tensor x, Tensor output, Activation activation)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output)); CheckSameLength(x, output, "Activate");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise(activation.ToString(), output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Activate", x, output))
        {
            using var s = Stage();
            ActivateCore(s.In(x), s.Out(output), activation);
            s.Commit();
        }
        else ActivateCore(x, output, activation);
    }

    /// <summary>Implements <see cref="Activate"/>.</summary>
    protected abstract void ActivateCore(Tensor x, Tensor output, Activation activation);

    /// <summary>GEGLU: x [..., 2D] is split into (h, g); output [..., D] = h * gelu_erf(g).</summary>
    public void Geglu(Tensor x, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output));
        int d = output.Dim(-1);
        if (x.Dim(-1) != 2 * d || x.Length != 2 * output.Length) throw new ArgumentException($"Geglu input {x} must be twice as wide as output {output}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("Geglu", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Geglu", x, output))
        {
            using var s = Stage();
            GegluCore(s.In(x), s.Out(output));
            s.Commit();
        }
        else GegluCore(x, output);
    }

    /// <summary>Implements <see cref="Geglu"/>.</summary>
    protected abstract void GegluCore(Tensor x, Tensor output);

    /// <summary>
    /// output = a (op) b with NumPy broadcasting (ranks up to 6); output must have the broadcast
    /// shape and may alias a.
    /// </summary>
    public void Binary(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        CheckCompute(a, nameof(a)); CheckCompute(b, nameof(b)); CheckCompute(output, nameof(output));
        var shape = BroadcastShape(a.Shape, b.Shape);
        if (!output.Shape.SequenceEqual(shape)) throw new ArgumentException($"{op}: output {output} should be {Tensor.ShapeString(shape)}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise(op.ToString(), output));
        if (AnyHalf(a, b, output) && !HandlesHalfActivations("Binary", a, b, output))
        {
            using var s = Stage();
            BinaryCore(op, s.In(a), s.In(b), s.Out(output));
            s.Commit();
        }
        else BinaryCore(op, a, b, output);
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
        CheckCompute(output, nameof(output));
        if (inputs.Length != coefficients.Length || inputs.Length == 0 || inputs.Length > MaxLinearCombinationTerms)
            throw new ArgumentException($"LinearCombination takes 1..{MaxLinearCombinationTerms} inputs with one coefficient each; got {inputs.Length} inputs, {coefficients.Length} coefficients.");
        for (int i = 0; i < inputs.Length; i++) { CheckCompute(inputs[i], $"inputs[{i}]"); CheckSameLength(inputs[i], output, "LinearCombination"); }
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise($"LinearCombination{inputs.Length}", output));
        bool half = IsHalf(output);
        foreach (var t in inputs) half |= IsHalf(t);
        if (half && !HandlesHalfActivations("LinearCombination", output))
        {
            using var s = Stage();
            var wide = new Tensor[inputs.Length];
            for (int i = 0; i < inputs.Length; i++) wide[i] = s.In(inputs[i]);
            LinearCombinationCore(s.Out(output), wide, coefficients);
            s.Commit();
        }
        else LinearCombinationCore(output, inputs, coefficients);
    }

    /// <summary>Largest number of terms <see cref="LinearCombination"/> accepts.</summary>
    public const int MaxLinearCombinationTerms = 8;

    /// <summary>Implements <see cref="LinearCombination"/>.</summary>
    protected abstract void LinearCombinationCore(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients);

    /// <summary>output = a * b + c where a, b, c are scalars broadcast: output = alpha * x + beta (element-wise).</summary>
    public void Affine(Tensor x, Tensor output, float alpha, float beta)
    {
        CheckCompute(x, nameof(x)); CheckCompute(output, nameof(output)); CheckSameLength(x, output, "Affine");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("Affine", output));
        if (AnyHalf(x, output) && !HandlesHalfActivations("Affine", x, output))
        {
            using var s = Stage();
            AffineCore(s.In(x), s.Out(output), alpha, beta);
            s.Commit();
        }
        else AffineCore(x, output, alpha, beta);
    }

    /// <summary>Implements <see cref="Affine"/>.</summary>
    protected abstract void AffineCore(Tensor x, Tensor output, float alpha, float beta);

    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public void Fill(Tensor output, float value)
    {
        CheckCompute(output, nameof(output));
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("Fill", output));
        if (AnyHalf(output) && !HandlesHalfActivations("Fill", output))
        {
            using var s = Stage();
            FillCore(s.Out(output), value);
            s.Commit();
        }
        else FillCore(output, value);
    }

    /// <summary>Implements <see cref="Fill"/>.</summary>
    protected abstract void FillCore(Tensor output, float value);

    /// <summary>
    /// diffusers get_timestep_embedding: half = dim / 2, f_i = exp(-ln(maxPeriod) i / (half - shift)),
    /// e = scale * t * f (float32 arithmetic like torch), [sin, cos] or [cos, sin] when flipped; odd
    /// dims get a zero last column. timesteps: [N]; output: [N, dim].
    /// </summary>
    public void TimestepEmbedding(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale = 1f, float maxPeriod = 10000f)
    {
        CheckCompute(timesteps, nameof(timesteps)); CheckCompute(output, nameof(output));
        if (output.Rank != 2 || output.Dim(0) != timesteps.Length) throw new ArgumentException($"TimestepEmbedding output {output} should be [{timesteps.Length}, dim].");
        if (output.Dim(1) < 2) throw new ArgumentException($"TimestepEmbedding needs dim >= 2, got {output.Dim(1)}.");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("TimestepEmbedding", output));
        if (AnyHalf(timesteps, output) && !HandlesHalfActivations("TimestepEmbedding", output))
        {
            using var s = Stage();
            TimestepEmbeddingCore(s.In(timesteps), s.Out(output), flipSinToCos, downscaleFreqShift, scale, maxPeriod);
            s.Commit();
        }
        else TimestepEmbeddingCore(timesteps, output, flipSinToCos, downscaleFreqShift, scale, maxPeriod);
    }

    /// <summary>Implements <see cref="TimestepEmbedding"/>.</summary>
    protected abstract void TimestepEmbeddingCore(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale, float maxPeriod);

    /// <summary>adaLN modulation: output[b, l, :] = x[b, l, :] * (1 + scale[b, :]) + shift[b, :]; x [B, L, D], shift/scale [B, D].</summary>
    public void Modulate(Tensor x, Tensor shift, Tensor scale, Tensor output)
    {
        CheckCompute(x, nameof(x)); CheckCompute(shift, nameof(shift)); CheckCompute(scale, nameof(scale)); CheckCompute(output, nameof(output));
        CheckRowVectors(x, shift, "Modulate shift"); CheckRowVectors(x, scale, "Modulate scale"); CheckSameShape(x, output, "Modulate");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("Modulate", output));
        if (AnyHalf(x, shift, scale, output) && !HandlesHalfActivations("Modulate", x, output))
        {
            using var s = Stage();
            ModulateCore(s.In(x), s.In(shift), s.In(scale), s.Out(output));
            s.Commit();
        }
        else ModulateCore(x, shift, scale, output);
    }

    /// <summary>Implements <see cref="Modulate"/>.</summary>
    protected abstract void ModulateCore(Tensor x, Tensor shift, Tensor scale, Tensor output);

    /// <summary>adaLN gating: output[b, l, :] = residual[b, l, :] + gate[b, :] * x[b, l, :]; output may alias residual.</summary>
    public void GatedAdd(Tensor residual, Tensor x, Tensor gate, Tensor output)
    {
        CheckCompute(residual, nameof(residual)); CheckCompute(x, nameof(x)); CheckCompute(gate, nameof(gate)); CheckCompute(output, nameof(output));
        CheckSameShape(x, residual, "GatedAdd"); CheckSameShape(x, output, "GatedAdd"); CheckRowVectors(x, gate, "GatedAdd gate");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("GatedAdd", output));
        if (AnyHalf(residual, x, gate, output) && !HandlesHalfActivations("GatedAdd", residual, x, output))
        {
            using var s = Stage();
            GatedAddCore(s.In(residual), s.In(x), s.In(gate), s.Out(output));
            s.Commit();
        }
        else GatedAddCore(residual, x, gate, output);
    }

    /// <summary>Implements <see cref="GatedAdd"/>.</summary>
    protected abstract void GatedAddCore(Tensor residual, Tensor x, Tensor gate, Tensor output);

    /// <summary>
    /// Finiteness check without a host copy: <paramref name="x"/> is read as <c>marker.Length</c> equal rows
    /// (one per image); where a row holds a NaN or an infinity and its marker is still 0, the marker is set to
    /// <paramref name="mark"/>. Markers already set keep their value, so after a series of calls with growing
    /// marks (the step numbers) one small read-back of <paramref name="marker"/> says which rows went
    /// non-finite and at which call first. The caller zeroes the marker before the first call.
    /// </summary>
    public void MarkNonFinite(Tensor x, Tensor marker, float mark)
    {
        CheckCompute(x, nameof(x)); CheckCompute(marker, nameof(marker));
        if (marker.Length < 1 || x.Length % marker.Length != 0)
            throw new ArgumentException($"MarkNonFinite: {x} does not split into {marker.Length} equal rows (marker {marker}).");
        if (mark == 0 || !float.IsFinite(mark)) throw new ArgumentException($"MarkNonFinite: mark {mark} must be finite and non-zero (0 means clean).");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Pointwise("MarkNonFinite", x));
        if (AnyHalf(x, marker) && !HandlesHalfActivations("MarkNonFinite"))
        {
            using var s = Stage();
            MarkNonFiniteCore(s.In(x), s.Out(marker, keepContents: true), mark);
            s.Commit();
        }
        else MarkNonFiniteCore(x, marker, mark);
    }

    /// <summary>Implements <see cref="MarkNonFinite"/>.</summary>
    protected abstract void MarkNonFiniteCore(Tensor x, Tensor marker, float mark);
}
