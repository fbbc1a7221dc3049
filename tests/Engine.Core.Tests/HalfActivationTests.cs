namespace Engine.Core.Tests;

/// <summary>
/// F16 and BF16 activations on the ILGPU device: every op the models call, with half inputs and a half
/// output, against (1) the float32 op on the rounded inputs, rounded once (exact on the CPU accelerator:
/// products and reductions accumulate in float32 exactly as the float32 path does), and (2) the float32
/// result of the unrounded inputs within the stated per-op tolerance (max abs error / max abs value).
/// Parameters (weights, biases, norm affines, adaLN vectors) stay float32 as the models keep them.
/// </summary>
[TestFixture]
public class HalfActivationTests
{
    /// <summary>One op: its activation inputs, float32 parameters, output shape and tolerances per storage.</summary>
    public sealed record OpCase(string Name, int[][] Activations, int[][] Parameters, int[] Output, Action<Device, Tensor[], Tensor[], Tensor> Run,
        double F16Tolerance, double BF16Tolerance)
    {
        /// <inheritdoc />
        public override string ToString() => Name;
    }

    // Tolerances: fp16 keeps 11 significant bits (unit roundoff 4.9e-4), bf16 8 (3.9e-3). An op rounds its
    // inputs and its output once each, so element-wise ops stay within ~2 units, sums and normalisations
    // within a few; measured here: at most 5.8e-4 (fp16) and 3.9e-3 (bf16), about one unit, so the bounds
    // below (two units element-wise, four for products and reductions) carry a margin.
    private const double F16Pointwise = 1e-3, BF16Pointwise = 8e-3;
    private const double F16Reduction = 2e-3, BF16Reduction = 1.6e-2;

    public static IEnumerable<OpCase> Cases()
    {
        yield return new("MatMul", [[2, 19, 45]], [[37, 45], [37]], [2, 19, 37],
            (d, a, p, o) => d.MatMul(a[0], p[0], o, transposeB: true, bias: p[1], activation: Activation.SiLU), F16Reduction, BF16Reduction);
        yield return new("MatMulBatched", [[2, 9, 16], [2, 16, 11]], [], [2, 9, 11],
            (d, a, p, o) => d.MatMul(a[0], a[1], o, alpha: 0.25f), F16Reduction, BF16Reduction);
        yield return new("Conv2d3x3", [[2, 5, 9, 7]], [[6, 5, 3, 3], [6]], [2, 6, 9, 7],
            (d, a, p, o) => d.Conv2d(a[0], p[0], p[1], o, 1, 1), F16Reduction, BF16Reduction);
        yield return new("Conv2dStride2", [[1, 4, 9, 8]], [[3, 4, 3, 3], [3]], [1, 3, 5, 4],
            (d, a, p, o) => d.Conv2d(a[0], p[0], p[1], o, 2, 1), F16Reduction, BF16Reduction);
        yield return new("Attention", [[2, 13, 16], [2, 7, 16], [2, 7, 16]], [], [2, 13, 16],
            (d, a, p, o) => d.Attention(a[0], a[1], a[2], o, 2, 0.35f), F16Reduction, BF16Reduction);
        yield return new("GroupNormSiLU", [[2, 8, 5, 3]], [[8], [8]], [2, 8, 5, 3],
            (d, a, p, o) => d.GroupNorm(a[0], p[0], p[1], o, 4, 1e-5f, silu: true), F16Reduction, BF16Reduction);
        yield return new("LayerNorm", [[3, 5, 24]], [[24], [24]], [3, 5, 24],
            (d, a, p, o) => d.LayerNorm(a[0], p[0], p[1], o, 1e-5f), F16Reduction, BF16Reduction);
        yield return new("Softmax", [[6, 33]], [], [6, 33], (d, a, p, o) => d.Softmax(a[0], o), F16Reduction, BF16Reduction);
        yield return new("Geglu", [[4, 6, 20]], [], [4, 6, 10], (d, a, p, o) => d.Geglu(a[0], o), F16Pointwise, BF16Pointwise);
        yield return new("GeluTanh", [[3, 50]], [], [3, 50], (d, a, p, o) => d.Activate(a[0], o, Activation.GeluTanh), F16Pointwise, BF16Pointwise);
        yield return new("AddBroadcast", [[2, 4, 3, 5]], [[2, 4, 1, 1]], [2, 4, 3, 5], (d, a, p, o) => d.Add(a[0], p[0], o), F16Pointwise, BF16Pointwise);
        yield return new("Add", [[3, 7, 11], [3, 7, 11]], [], [3, 7, 11], (d, a, p, o) => d.Add(a[0], a[1], o), F16Pointwise, BF16Pointwise);
        yield return new("MulBroadcastHalves", [[2, 4, 1, 1], [2, 4, 3, 5]], [], [2, 4, 3, 5], (d, a, p, o) => d.Mul(a[0], a[1], o), F16Pointwise, BF16Pointwise);
        yield return new("SubFloat32", [[5, 9]], [[5, 9]], [5, 9], (d, a, p, o) => d.Binary(BinaryOp.Sub, a[0], p[0], o), F16Pointwise, BF16Pointwise);
        yield return new("Affine", [[70]], [], [70], (d, a, p, o) => d.Affine(a[0], o, 0.7f, -0.2f), F16Pointwise, BF16Pointwise);
        yield return new("Modulate", [[2, 6, 8]], [[2, 8], [2, 8]], [2, 6, 8], (d, a, p, o) => d.Modulate(a[0], p[0], p[1], o), F16Pointwise, BF16Pointwise);
        yield return new("GatedAdd", [[2, 6, 8], [2, 6, 8]], [[2, 8]], [2, 6, 8], (d, a, p, o) => d.GatedAdd(a[0], a[1], p[0], o), F16Pointwise, BF16Pointwise);
        yield return new("Upsample", [[1, 3, 4, 5]], [], [1, 3, 8, 10], (d, a, p, o) => d.UpsampleNearest2x(a[0], o), F16Pointwise, BF16Pointwise);
        yield return new("Concat", [[2, 3, 4, 2], [2, 5, 4, 2]], [], [2, 8, 4, 2], (d, a, p, o) => d.ConcatChannels(a[0], a[1], o), F16Pointwise, BF16Pointwise);
        yield return new("Transpose", [[2, 5, 7]], [], [2, 7, 5], (d, a, p, o) => d.Transpose(a[0], o), F16Pointwise, BF16Pointwise);
        yield return new("Patchify", [[2, 3, 4, 6]], [], [2, 6, 12], (d, a, p, o) => d.Patchify(a[0], o, 2), F16Pointwise, BF16Pointwise);
        yield return new("Unpatchify", [[2, 6, 12]], [], [2, 3, 4, 6], (d, a, p, o) => d.Unpatchify(a[0], o, 2), F16Pointwise, BF16Pointwise);
        yield return new("SliceChannels", [[2, 7, 3, 2]], [], [2, 3, 3, 2], (d, a, p, o) => d.SliceChannels(a[0], 2, o), F16Pointwise, BF16Pointwise);
        yield return new("GatherRows", [], [[5, 12]], [3, 12], (d, a, p, o) =>
        {
            using var picks = d.Upload([4f, 0f, 2f], 3);
            d.GatherRows(p[0], picks, o);
        }, F16Pointwise, BF16Pointwise);
        yield return new("SiLU", [[4, 33]], [], [4, 33], (d, a, p, o) => d.Activate(a[0], o, Activation.SiLU), F16Pointwise, BF16Pointwise);
        // adaLN vectors that are themselves half activations (a Linear's output at f16): widened, then read as float32.
        yield return new("ModulateHalfVectors", [[2, 6, 8], [2, 8], [2, 8]], [], [2, 6, 8], (d, a, p, o) => d.Modulate(a[0], a[1], a[2], o), F16Pointwise, BF16Pointwise);
        yield return new("GatedAddHalfGate", [[2, 6, 8], [2, 6, 8], [2, 8]], [], [2, 6, 8], (d, a, p, o) => d.GatedAdd(a[0], a[1], a[2], o), F16Pointwise, BF16Pointwise);
    }

    private static readonly DType[] HalfTypes = [DType.F16, DType.BF16];

    /// <summary>
    /// Ops that read and write half activations in their kernels on every ILGPU backend (no float32 copies: the live bytes
    /// do not rise during the op); the others here stage somewhere (attention off CUDA, products with half operands
    /// the general kernels take through copies of parameters).
    /// </summary>
    private static readonly HashSet<string> Unstaged =
    [
        "GroupNormSiLU", "LayerNorm", "Softmax", "Geglu", "GeluTanh", "AddBroadcast", "Add", "MulBroadcastHalves", "SubFloat32", "Affine",
        "Modulate", "GatedAdd", "Upsample", "Concat", "Transpose", "Patchify", "Unpatchify", "SliceChannels", "SiLU",
    ];

    /// <summary>The ILGPU kinds under test (the CPU device keeps float32 activations).</summary>
    public static IEnumerable<string> IlgpuKinds => TestDevices.Kinds.Where(k => k != "cpu");

    /// <summary>A float rounded to <paramref name="dtype"/> on the host, as the device stores it.</summary>
    private static float Round(float v, DType dtype) =>
        dtype == DType.F16 ? (float)(System.Half)v : DTypeExtensions.BFloat16ToSingle(DTypeExtensions.SingleToBFloat16(v));

    [Test]
    public void HalfActivationsMatchFloat32([ValueSource(nameof(IlgpuKinds))] string kind, [ValueSource(nameof(Cases))] OpCase op,
        [ValueSource(nameof(HalfTypes))] DType dtype)
    {
        var device = TestDevices.Get(kind);
        Assert.That(device.SupportsHalfActivations, Is.True);
        var rng = new Random(op.Name.Length * 31 + 7);
        var acts = op.Activations.Select(s => Reference.Random(rng, (int)Tensor.ShapeLength(s), 2f)).ToArray();
        var pars = op.Parameters.Select(s => Reference.Random(rng, (int)Tensor.ShapeLength(s), 0.5f)).ToArray();
        var rounded = acts.Select(a => a.Select(v => Round(v, dtype)).ToArray()).ToArray();

        float[] RunF32(float[][] inputs)
        {
            var ta = inputs.Select((a, i) => device.Upload(a, op.Activations[i])).ToArray();
            var tp = pars.Select((p, i) => device.Upload(p, op.Parameters[i])).ToArray();
            using var output = device.Allocate(op.Output);
            try { op.Run(device, ta, tp, output); return output.ToArray(); }
            finally { foreach (var t in ta.Concat(tp)) t.Dispose(); }
        }

        var full = RunF32(acts);
        var exact = RunF32(rounded).Select(v => Round(v, dtype)).ToArray();

        var halves = acts.Select((a, i) => { using var w = device.Upload(a, op.Activations[i]); return device.Convert(w, dtype); }).ToArray();
        var parameters = pars.Select((p, i) => device.Upload(p, op.Parameters[i])).ToArray();
        using var result = device.Allocate(dtype, op.Output);
        long live = device.Transfers.LiveBytes;
        device.Transfers.ResetPeaks();
        try { op.Run(device, halves, parameters, result); }
        finally { foreach (var t in halves.Concat(parameters)) t.Dispose(); }
        if (Unstaged.Contains(op.Name))
            Assert.That(device.Transfers.PeakLiveBytes, Is.EqualTo(live), $"{op.Name} {dtype}: no float32 stand-ins (staging) during the op");
        var got = result.ToArray();

        if (kind == "ilgpu-cpu" && op.Name == "LayerNorm" && device is Engine.Gpu.IlgpuDevice { WarpRowNorms: true })
        {
            // The warp-per-row LayerNorm sums in another order (one shifted pass): within one unit of the format.
            for (int i = 0; i < got.Length; i++)
                Assert.That(got[i], Is.EqualTo(exact[i]).Within(Math.Max(HalfNormTests.Unit(exact[i], dtype), HalfNormTests.StatisticsSlack)),
                    $"{op.Name} {dtype}: element {i} within one unit of the float32 op on the rounded inputs");
        }
        else if (kind == "ilgpu-cpu")
            Assert.That(got, Is.EqualTo(exact), $"{op.Name} {dtype}: the float32 op on the rounded inputs, rounded once");
        double error = Fixtures.RelativeError(got, full);
        double tolerance = dtype == DType.F16 ? op.F16Tolerance : op.BF16Tolerance;
        TestContext.Out.WriteLine($"{op.Name} {dtype}: relative error {error:E2} (tolerance {tolerance:E1})");
        Assert.That(error, Is.LessThanOrEqualTo(tolerance), $"{op.Name} {dtype} against float32");
        Assert.That(error, Is.GreaterThan(0), $"{op.Name} {dtype} rounds something");
    }

    /// <summary>The cases with an activation input (GatherRows reads a parameter table).</summary>
    public static IEnumerable<OpCase> CasesWithActivations() => Cases().Where(c => c.Activations.Length > 0);

    /// <summary>Storages of the activations (alternating over inputs when two are given) and of the output.</summary>
    public static IEnumerable<DType[]> Mixes() =>
    [
        [DType.F16, DType.BF16], [DType.F32, DType.F16], [DType.BF16, DType.F32], [DType.F16, DType.BF16, DType.F16],
    ];

    /// <summary>
    /// Mixed storages (a half input with another output type, float32 inputs with a half output, two half formats
    /// among the inputs): the kernels that take one 16-bit format get float32 stand-ins from the base class
    /// (<c>HandlesHalfActivations</c> sees the storages), the others read each operand as it is; either way the
    /// result is the float32 op on the inputs as stored, rounded once to the output's type.
    /// </summary>
    [Test]
    public void MixedStoragesMatchTheFloat32OpOnTheStoredInputs([ValueSource(nameof(IlgpuKinds))] string kind, [ValueSource(nameof(CasesWithActivations))] OpCase op,
        [ValueSource(nameof(Mixes))] DType[] mix)
    {
        var device = TestDevices.Get(kind);
        DType outputType = mix[^1];
        DType InputType(int i) => mix.Length == 2 ? mix[0] : mix[i % 2];
        var rng = new Random(op.Name.Length * 17 + 3);
        var acts = op.Activations.Select((s, i) =>
            Reference.Random(rng, (int)Tensor.ShapeLength(s), 2f).Select(v => InputType(i) == DType.F32 ? v : Round(v, InputType(i))).ToArray()).ToArray();
        var pars = op.Parameters.Select(s => Reference.Random(rng, (int)Tensor.ShapeLength(s), 0.5f)).ToArray();

        var ta = acts.Select((a, i) => device.Upload(a, op.Activations[i])).ToArray();
        var tp = pars.Select((p, i) => device.Upload(p, op.Parameters[i])).ToArray();
        float[] expected;
        using (var output = device.Allocate(op.Output))
        {
            op.Run(device, ta, tp, output);
            expected = output.ToArray().Select(v => outputType == DType.F32 ? v : Round(v, outputType)).ToArray();
        }
        var stored = ta.Select((t, i) => InputType(i) == DType.F32 ? t : device.Convert(t, InputType(i))).ToArray();
        using var result = device.Allocate(outputType, op.Output);
        try { op.Run(device, stored, tp, result); }
        finally
        {
            foreach (var t in ta.Concat(tp).Concat(stored).Distinct()) t.Dispose();
        }
        var got = result.ToArray();
        if (kind == "ilgpu-cpu")
            Assert.That(got, Is.EqualTo(expected), $"{op.Name} {string.Join("/", mix)}: the float32 op on the stored inputs, rounded once");
        else
        {
            double tolerance = outputType == DType.BF16 ? op.BF16Tolerance : op.F16Tolerance;
            Assert.That(Fixtures.RelativeError(got, expected), Is.LessThanOrEqualTo(tolerance), $"{op.Name} {string.Join("/", mix)}");
        }
    }

    [Test]
    public void CpuDeviceNamesHalfActivation([ValueSource(nameof(HalfTypes))] DType dtype)
    {
        var device = TestDevices.Get("cpu");
        Assert.That(device.SupportsHalfActivations, Is.False);
        using var x = device.Allocate(dtype, 2, 3);
        using var o = device.Allocate(2, 3);
        var e = Assert.Throws<ArgumentException>(() => device.Activate(x, o, Activation.SiLU))!;
        Assert.That(e.Message, Does.Contain("'x'").And.Contain("F32"));
    }

    [Test]
    public void HalfOutputKeepsUntouchedWindow([ValueSource(nameof(IlgpuKinds))] string kind)
    {
        // CopyWindow writes part of its output: staging must carry the rest through unchanged.
        var device = TestDevices.Get(kind);
        var source = Enumerable.Range(0, 16).Select(i => i * 0.5f).ToArray();
        using var x32 = device.Upload(source, 1, 1, 4, 4);
        using var x = device.Convert(x32, DType.F16);
        using var o32 = device.Upload(Enumerable.Repeat(-1f, 16).ToArray(), 1, 1, 4, 4);
        using var o = device.Convert(o32, DType.F16);
        device.CopyWindow(x, 0, 0, o, 2, 2, 2, 2);
        var got = o.ToArray();
        Assert.That(got[0], Is.EqualTo(-1f));
        Assert.That(got[10], Is.EqualTo(0f));
        Assert.That(got[15], Is.EqualTo(2.5f));
    }
}
