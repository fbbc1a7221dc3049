using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using Engine.Core;
using Tensor = Engine.Core.Tensor;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    private const int ChunkSize = 16384;

    /// <summary>Runs <paramref name="body"/>(start, count) over [0, length) in chunks, in parallel when large.</summary>
    private void ForChunks(long length, Action<int, int> body)
    {
        int chunks = (int)((length + ChunkSize - 1) / ChunkSize);
        if (chunks <= 1) { body(0, (int)length); return; }
        Parallel.For(0, chunks, Parallelism, ch =>
        {
            int start = ch * ChunkSize;
            body(start, (int)Math.Min(ChunkSize, length - start));
        });
    }

    /// <inheritdoc />
    protected override void ActivateCore(Tensor x, Tensor output, Activation activation)
    {
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        ForChunks(x.Length, (s, n) =>
        {
            xa.AsSpan(xo + s, n).CopyTo(oa.AsSpan(oo + s, n));
            ApplyActivation(oa.AsSpan(oo + s, n), activation);
        });
    }

    /// <summary>
    /// Applies an activation in place. SiLU and both GELUs are single vectorised passes of their
    /// operators (Pointwise.Operators.cs) with the SIMD exp.
    /// </summary>
    internal static void ApplyActivation(Span<float> x, Activation activation)
    {
        switch (activation)
        {
            case Activation.None: return;
            case Activation.Relu: TensorPrimitives.Max(x, 0f, x); return;
            case Activation.SiLU: Pointwise.Map<SiluOperator>(x, x); return;
            case Activation.GeluTanh: Pointwise.Map<GeluTanhOperator>(x, x); return;
            case Activation.GeluErf: Pointwise.Map<GeluErfOperator>(x, x); return;
            default: throw new ArgumentOutOfRangeException(nameof(activation), activation, "unknown activation");
        }
    }

    /// <summary>
    /// GEGLU, x = [a | gate] per row: a * GELU(gate) in one pass over each row
    /// (<see cref="Pointwise.MapGated{TOp}"/>), in jobs of whole rows of about ChunkSize outputs.
    /// </summary>
    protected override unsafe void GegluCore(Tensor x, Tensor output)
    {
        int d = output.Dim(-1), rows = (int)(output.Length / Math.Max(1, d));
        if (d == 0 || rows == 0) return;
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        nint px = (nint)(xa.Pointer + xo), po = (nint)(oa.Pointer + oo);
        int rowsPerJob = Math.Max(1, ChunkSize / d), jobs = (rows + rowsPerJob - 1) / rowsPerJob;
        void Job(int job)
        {
            for (int r = job * rowsPerJob; r < Math.Min(rows, (job + 1) * rowsPerJob); r++)
            {
                float* src = (float*)px + (long)r * 2 * d;
                Pointwise.MapGated<GeluErfOperator>(src, src + d, (float*)po + (long)r * d, d);
            }
        }
        if (jobs == 1) Job(0);
        else Parallel.For(0, jobs, Parallelism, Job);
    }

    /// <inheritdoc />
    protected override void BinaryCore(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        var (aa, ao) = Raw(a);
        var (ba, bo) = Raw(b);
        var (oa, oo) = Raw(output);
        if (a.Length == output.Length && b.Length == output.Length)
        {
            ForChunks(output.Length, (s, n) => Apply(op, aa.AsSpan(ao + s, n), ba.AsSpan(bo + s, n), oa.AsSpan(oo + s, n)));
            return;
        }
        // General broadcast: strides of a and b over the output shape (0 where broadcast).
        int rank = output.Rank;
        var outShape = output.ShapeArray();
        var aStrides = BroadcastStrides(a.Shape, outShape);
        var bStrides = BroadcastStrides(b.Shape, outShape);
        if (TryBroadcastScalarRows(op, a, aa, ao, ba, bo, oa, oo, bStrides, outShape)) return;
        if ((op is BinaryOp.Add or BinaryOp.Mul) && TryBroadcastScalarRows(op, b, ba, bo, aa, ao, oa, oo, aStrides, outShape)) return;
        int inner = outShape.Length == 0 ? 1 : outShape[^1];
        long rows = output.Length / Math.Max(1, inner);
        Parallel.For(0, rows, Parallelism, r =>
        {
            long rem = r, aIdx = 0, bIdx = 0;
            for (int dim = rank - 2; dim >= 0; dim--)
            {
                long coord = rem % outShape[dim];
                rem /= outShape[dim];
                aIdx += coord * aStrides[dim];
                bIdx += coord * bStrides[dim];
            }
            long aInner = aStrides[rank - 1], bInner = bStrides[rank - 1];
            int dst = oo + (int)(r * inner);
            for (int j = 0; j < inner; j++)
                oa[dst + j] = Apply(op, aa[ao + aIdx + j * aInner], ba[bo + bIdx + j * bInner]);
        });
    }

    /// <summary>
    /// The broadcast of a per-row scalar over trailing dimensions, e.g. [B, C, H, W] + [B, C, 1, 1] (a
    /// UNet's time embedding): <paramref name="full"/> has the output's shape and the other operand is
    /// constant over each block of the trailing dimensions it broadcasts and dense over the leading ones,
    /// so each block is one vectorised scalar operation. False (nothing done) for any other pattern.
    /// </summary>
    private bool TryBroadcastScalarRows(BinaryOp op, Tensor full, NativeArray<float> fa, int fo, NativeArray<float> sa, int so, NativeArray<float> oa, int oo,
        long[] scalarStrides, int[] outShape)
    {
        if (full.Length != outShape.Aggregate(1L, (p, d) => p * d)) return false;
        int rank = outShape.Length, lead = rank;
        long inner = 1;
        while (lead > 0 && scalarStrides[lead - 1] == 0) { inner *= outShape[lead - 1]; lead--; }
        if (inner < 16 || lead == 0) return false;
        // The leading dimensions must index the scalar operand densely: row r reads scalar r.
        long expected = 1;
        for (int d = lead - 1; d >= 0; d--)
        {
            if (outShape[d] != 1 && scalarStrides[d] != expected) return false;
            expected *= outShape[d];
        }
        long rows = expected;
        int rowsPerJob = (int)Math.Max(1, ChunkSize / inner);
        int jobs = (int)((rows + rowsPerJob - 1) / rowsPerJob), n = (int)inner;
        void Job(int job)
        {
            long r1 = Math.Min(rows, (long)(job + 1) * rowsPerJob);
            for (long r = (long)job * rowsPerJob; r < r1; r++)
            {
                ReadOnlySpan<float> src = fa.AsSpan(fo + (int)(r * n), n);
                var dst = oa.AsSpan(oo + (int)(r * n), n);
                float v = sa[so + (int)r];
                switch (op)
                {
                    case BinaryOp.Add: TensorPrimitives.Add(src, v, dst); break;
                    case BinaryOp.Sub: TensorPrimitives.Subtract(src, v, dst); break;
                    case BinaryOp.Mul: TensorPrimitives.Multiply(src, v, dst); break;
                    default: TensorPrimitives.Divide(src, v, dst); break;
                }
            }
        }
        if (jobs == 1) Job(0);
        else Parallel.For(0, jobs, Parallelism, Job);
        return true;
    }

    private static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Sub => a - b,
        BinaryOp.Mul => a * b,
        _ => a / b,
    };

    private static void Apply(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> o)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, o); break;
            case BinaryOp.Sub: TensorPrimitives.Subtract(a, b, o); break;
            case BinaryOp.Mul: TensorPrimitives.Multiply(a, b, o); break;
            default: TensorPrimitives.Divide(a, b, o); break;
        }
    }

    /// <inheritdoc />
    protected override void LinearCombinationCore(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients)
    {
        var arrays = new (NativeArray<float> Array, int Offset)[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) arrays[i] = Raw(inputs[i]);
        var coeffs = coefficients.ToArray();
        var (oa, oo) = Raw(output);
        // Accumulate each chunk in a scratch row and write it last, so output may alias any input.
        ForChunks(output.Length, (s, n) =>
        {
            Span<float> acc = n <= 4096 ? stackalloc float[n] : new float[n];
            TensorPrimitives.Multiply(arrays[0].Array.AsSpan(arrays[0].Offset + s, n), coeffs[0], acc);
            for (int i = 1; i < arrays.Length; i++)
                TensorPrimitives.MultiplyAdd(arrays[i].Array.AsSpan(arrays[i].Offset + s, n), coeffs[i], acc, acc);
            acc.CopyTo(oa.AsSpan(oo + s, n));
        });
    }

    /// <inheritdoc />
    protected override void AffineCore(Tensor x, Tensor output, float alpha, float beta)
    {
        var (xa, xo) = Raw(x);
        var (oa, oo) = Raw(output);
        ForChunks(x.Length, (s, n) =>
        {
            var dst = oa.AsSpan(oo + s, n);
            TensorPrimitives.Multiply(xa.AsSpan(xo + s, n), alpha, dst);
            TensorPrimitives.Add(dst, beta, dst);
        });
    }

    /// <inheritdoc />
    protected override void FillCore(Tensor output, float value) => Span(output).Fill(value);

    /// <inheritdoc />
    protected override void TimestepEmbeddingCore(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale, float maxPeriod)
    {
        int dim = output.Dim(1), half = dim / 2;
        var t = Span(timesteps);
        var o = Span(output);
        // float32 throughout, in torch's order of operations: exponent, exp, t * f, scale, sin/cos; the
        // exp is the kernels' correctly rounded one so that every device gets the same frequencies.
        float logPeriod = -MathF.Log(maxPeriod);
        for (int n = 0; n < t.Length; n++)
        {
            var row = o.Slice(n * dim, dim);
            for (int i = 0; i < half; i++)
            {
                float exponent = logPeriod * i / (half - downscaleFreqShift);
                float e = scale * (t[n] * ScalarMath.ExpAccurate(exponent));
                float s = MathF.Sin(e), c = MathF.Cos(e);
                row[i] = flipSinToCos ? c : s;
                row[half + i] = flipSinToCos ? s : c;
            }
            if (dim % 2 == 1) row[dim - 1] = 0f;
        }
    }

    /// <inheritdoc />
    protected override void ModulateCore(Tensor x, Tensor shift, Tensor scale, Tensor output)
    {
        int b = x.Dim(0), l = x.Dim(1), d = x.Dim(2);
        var (xa, xo) = Raw(x);
        var (sha, sho) = Raw(shift);
        var (sca, sco) = Raw(scale);
        var (oa, oo) = Raw(output);
        // 1 + scale once per batch entry, then one fused multiply-add per row.
        var onePlusScale = new float[b * d];
        TensorPrimitives.Add(sca.AsSpan(sco, b * d), 1f, onePlusScale);
        Parallel.For(0, b * l, Parallelism, row =>
        {
            int bi = row / l;
            TensorPrimitives.MultiplyAdd(xa.AsSpan(xo + row * d, d), onePlusScale.AsSpan(bi * d, d), sha.AsSpan(sho + bi * d, d), oa.AsSpan(oo + row * d, d));
        });
    }

    /// <inheritdoc />
    protected override void GatedAddCore(Tensor residual, Tensor x, Tensor gate, Tensor output)
    {
        int b = x.Dim(0), l = x.Dim(1), d = x.Dim(2);
        var (ra, ro) = Raw(residual);
        var (xa, xo) = Raw(x);
        var (ga, go) = Raw(gate);
        var (oa, oo) = Raw(output);
        Parallel.For(0, b * l, Parallelism, row =>
        {
            int bi = row / l;
            TensorPrimitives.MultiplyAdd(xa.AsSpan(xo + row * d, d), ga.AsSpan(go + bi * d, d), ra.AsSpan(ro + row * d, d), oa.AsSpan(oo + row * d, d));
        });
    }

    /// <inheritdoc />
    protected override void MarkNonFiniteCore(Tensor x, Tensor marker, float mark)
    {
        var (xa, xo) = Raw(x);
        var m = Span(marker);
        int rowLength = checked((int)(x.Length / marker.Length));
        for (int r = 0; r < m.Length; r++)
        {
            if (m[r] != 0) continue;
            var row = xa.AsSpan(xo + r * rowLength, rowLength);
            if (!IsFinite(row)) m[r] = mark;
        }
    }

    private static bool IsFinite(ReadOnlySpan<float> row)
    {
        // x - x is 0 for finite x and NaN for NaN and the infinities; a sum stays NaN once it meets one.
        int i = 0;
        if (System.Numerics.Vector.IsHardwareAccelerated)
        {
            var acc = System.Numerics.Vector<float>.Zero;
            var vectors = System.Runtime.InteropServices.MemoryMarshal.Cast<float, System.Numerics.Vector<float>>(row);
            foreach (var v in vectors) acc += v - v;
            if (System.Numerics.Vector.Sum(acc) != 0) return false; // NaN compares unequal too
            i = vectors.Length * System.Numerics.Vector<float>.Count;
        }
        for (; i < row.Length; i++)
            if (!float.IsFinite(row[i])) return false;
        return true;
    }
}
