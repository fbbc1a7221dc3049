using Engine.Core;
using Engine.Kernels;
using ILGPU;

namespace Engine.Gpu;

public sealed partial class IlgpuDevice
{
    /// <inheritdoc />
    protected override void ActivateCore(Tensor x, Tensor output, Activation activation)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            LaunchHalf(x, null, output, new ActivateLaunch(this, Extent(x.Length, "Activate"), activation));
            return;
        }
        _kernels.Activate(Extent(x.Length, "Activate"), View(x), View(output), activation);
    }

    /// <inheritdoc />
    protected override void GegluCore(Tensor x, Tensor output)
    {
        if (output.Length == 0) return;
        if (x.DType != DType.F32)
        {
            LaunchHalf(x, null, output, new GegluLaunch(this, Extent(output.Length, "Geglu"), output.Dim(-1)));
            return;
        }
        _kernels.Geglu(Extent(output.Length, "Geglu"), View(x), View(output), output.Dim(-1));
    }

    /// <inheritdoc />
    protected override void BinaryCore(BinaryOp op, Tensor a, Tensor b, Tensor output)
    {
        if (output.Length == 0) return;
        int n = Extent(output.Length, op.ToString());
        bool f32 = a.DType == DType.F32 && b.DType == DType.F32 && output.DType == DType.F32;
        if (a.Length == output.Length && b.Length == output.Length)
        {
            if (f32) _kernels.Binary(n, View(a), View(b), View(output), op);
            else new BinaryLaunch(this, op, n, null).WithA(a, b, output);
            return;
        }
        int rank = output.Rank;
        if (rank > 6) throw new ArgumentException($"{op}: broadcasting supports rank up to 6, got {output}.");
        var shape = output.ShapeArray();
        var aStrides = BroadcastStrides(a.Shape, shape);
        var bStrides = BroadcastStrides(b.Shape, shape);
        // Pad to rank 6 with leading size-1 dimensions.
        Span<int> dims = stackalloc int[6];
        Span<long> sa = stackalloc long[6], sb = stackalloc long[6];
        for (int i = 0; i < 6; i++)
        {
            int src = i - (6 - rank);
            dims[i] = src >= 0 ? shape[src] : 1;
            sa[i] = src >= 0 ? aStrides[src] : 0;
            sb[i] = src >= 0 ? bStrides[src] : 0;
        }
        var s = new BroadcastShape
        {
            D0 = dims[0], D1 = dims[1], D2 = dims[2], D3 = dims[3], D4 = dims[4], D5 = dims[5],
            A0 = sa[0], A1 = sa[1], A2 = sa[2], A3 = sa[3], A4 = sa[4], A5 = sa[5],
            B0 = sb[0], B1 = sb[1], B2 = sb[2], B3 = sb[3], B4 = sb[4], B5 = sb[5],
        };
        if (f32) _kernels.BinaryBroadcast(n, View(a), View(b), View(output), s, op);
        else new BinaryLaunch(this, op, n, s).WithA(a, b, output);
    }

    /// <summary>
    /// Binary ops with an f16 or bf16 operand or output: the kernel for the three storages, picked one operand at a
    /// time (each read widened exactly, the result rounded once: the float32 kernel's result, without float32 copies).
    /// </summary>
    private readonly struct BinaryLaunch(IlgpuDevice device, BinaryOp op, int n, BroadcastShape? shape)
    {
        public void WithA(Tensor a, Tensor b, Tensor c)
        {
            switch (a.DType)
            {
                case DType.F16: WithB(new F16Weights(ViewF16(a)), b, c); break;
                case DType.BF16: WithB(new BF16Weights(ViewBF16(a)), b, c); break;
                default: WithB(new F32Weights(View(a)), b, c); break;
            }
        }

        private void WithB<TA>(TA a, Tensor b, Tensor c) where TA : struct, IWeightView
        {
            switch (b.DType)
            {
                case DType.F16: WithC(a, new F16Weights(ViewF16(b)), c); break;
                case DType.BF16: WithC(a, new BF16Weights(ViewBF16(b)), c); break;
                default: WithC(a, new F32Weights(View(b)), c); break;
            }
        }

        private void WithC<TA, TB>(TA a, TB b, Tensor c) where TA : struct, IWeightView where TB : struct, IWeightView
        {
            switch (c.DType)
            {
                case DType.F16: Run(a, b, new F16Output(ViewF16(c))); break;
                case DType.BF16: Run(a, b, new BF16Output(ViewBF16(c))); break;
                default: Run(a, b, new F32Output(View(c))); break;
            }
        }

        private void Run<TA, TB, TC>(TA a, TB b, TC c) where TA : struct, IWeightView where TB : struct, IWeightView where TC : struct, IOutputView
        {
            if (shape is { } s) device._kernels.BinaryBroadcastAny<TA, TB, TC>()(n, a, b, c, s, op);
            else device._kernels.BinaryAny<TA, TB, TC>()(n, a, b, c, op);
        }
    }

    /// <inheritdoc />
    protected override void LinearCombinationCore(Tensor output, ReadOnlySpan<Tensor> inputs, ReadOnlySpan<float> coefficients)
    {
        if (output.Length == 0) return;
        // Unused slots repeat the first input; Count keeps the kernel from reading them.
        ArrayView<float> X(ReadOnlySpan<Tensor> t, int i) => View(t[i < t.Length ? i : 0]);
        float C(ReadOnlySpan<float> c, int i) => i < c.Length ? c[i] : 0f;
        var terms = new LinearTerms
        {
            X0 = X(inputs, 0), X1 = X(inputs, 1), X2 = X(inputs, 2), X3 = X(inputs, 3),
            X4 = X(inputs, 4), X5 = X(inputs, 5), X6 = X(inputs, 6), X7 = X(inputs, 7),
            C0 = C(coefficients, 0), C1 = C(coefficients, 1), C2 = C(coefficients, 2), C3 = C(coefficients, 3),
            C4 = C(coefficients, 4), C5 = C(coefficients, 5), C6 = C(coefficients, 6), C7 = C(coefficients, 7),
            Count = inputs.Length,
        };
        _kernels.LinearCombination(Extent(output.Length, "LinearCombination"), View(output), terms);
    }

    /// <inheritdoc />
    protected override void AffineCore(Tensor x, Tensor output, float alpha, float beta)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            LaunchHalf(x, null, output, new AffineLaunch(this, Extent(x.Length, "Affine"), alpha, beta));
            return;
        }
        _kernels.Affine(Extent(x.Length, "Affine"), View(x), View(output), alpha, beta);
    }

    /// <inheritdoc />
    protected override void FillCore(Tensor output, float value)
    {
        if (output.Length == 0) return;
        _kernels.Fill(Extent(output.Length, "Fill"), View(output), value);
    }

    /// <inheritdoc />
    protected override void TimestepEmbeddingCore(Tensor timesteps, Tensor output, bool flipSinToCos, float downscaleFreqShift, float scale, float maxPeriod)
    {
        int dim = output.Dim(1), half = dim / 2;
        if (timesteps.Length == 0) return;
        if (half == 0) { FillCore(output, 0f); return; }
        var p = new TimestepParams
        {
            Dim = dim, Half = half, Flip = flipSinToCos ? 1 : 0, LogPeriod = -MathF.Log(maxPeriod), Shift = downscaleFreqShift, Scale = scale,
        };
        _kernels.TimestepEmbedding(Extent(timesteps.Length * half, "TimestepEmbedding"), View(timesteps), View(output), p);
    }

    /// <inheritdoc />
    protected override void ModulateCore(Tensor x, Tensor shift, Tensor scale, Tensor output)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            // Input and output share a half format (HandlesHalfActivations); half shift and scale are widened for the kernel.
            using var s = Stage();
            LaunchHalf(x, null, output, new ModulateLaunch(this, Extent(x.Length, "Modulate"), View(s.In(shift)), View(s.In(scale)), x.Dim(1), x.Dim(2)));
            return;
        }
        _kernels.Modulate(Extent(x.Length, "Modulate"), View(x), View(shift), View(scale), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void GatedAddCore(Tensor residual, Tensor x, Tensor gate, Tensor output)
    {
        if (x.Length == 0) return;
        if (x.DType != DType.F32)
        {
            // Residual, input and output share a half format (HandlesHalfActivations); a half gate is widened for the kernel.
            using var s = Stage();
            LaunchHalf(residual, x, output, new GatedAddLaunch(this, Extent(x.Length, "GatedAdd"), View(s.In(gate)), x.Dim(1), x.Dim(2)));
            return;
        }
        _kernels.GatedAdd(Extent(x.Length, "GatedAdd"), View(residual), View(x), View(gate), View(output), x.Dim(1), x.Dim(2));
    }

    /// <inheritdoc />
    protected override void MarkNonFiniteCore(Tensor x, Tensor marker, float mark)
    {
        if (x.Length == 0) return;
        _kernels.MarkNonFinite(Extent(x.Length, "MarkNonFinite"), View(x), View(marker), (int)(x.Length / marker.Length), mark);
    }
}
