using Engine.Core;

namespace Engine.Cpu;

public sealed partial class CpuDevice
{
    // Linear layers with fewer rows than this (timestep and AdaLN projections of a batch) stay float32:
    // they read the weight once, so bf16 gains nothing there and a packed copy would only cost memory.
    private const int Bf16MinRows = 16;

    private readonly Bf16WeightCache _bf16Weights = new();

    /// <summary>The bf16 kernel library this device uses (tests substitute an absent one).</summary>
    internal Bf16Kernels Bf16 { get; set; } = Bf16Kernels.Default;

    /// <summary>One line for <c>engine info</c>: whether bf16 compute is available, through what, and AMX.</summary>
    public static string Bf16Description => Bf16Kernels.Default.Describe();

    /// <inheritdoc />
    public override string? ComputeUnavailableReason(ComputePrecision precision) =>
        precision == ComputePrecision.F32 ? null : Bf16.UnavailableReason;

    /// <summary>
    /// False: measured on the 2-vCPU AVX512-BF16 machine class (docs/PERFORMANCE.md), the vdpbf16ps kernel does
    /// as many multiply-adds per cycle as float32 FMA on two ports and loses to the float32 kernels once it
    /// rounds the activations, except on memory-bound Linear layers; so <c>auto</c> keeps float32. AMX tiles
    /// (not exposed on that machine) would change this.
    /// </summary>
    public override bool PrefersBf16 => false;

    /// <summary>
    /// Half-precision weights go straight to the packers, never widened into a whole float32 copy per call: under
    /// bf16 compute to the bf16 packer (converted once), in float32 to the GEMM's packers, which widen each panel
    /// as they copy it, and the Winograd convolution transforms them as stored (the direct convolution kernels alone
    /// still read a widened copy).
    /// </summary>
    protected override bool ReadsHalfWeights => true;

    /// <inheritdoc />
    protected override unsafe void LinearCore(Tensor x, Tensor weight, Tensor? bias, Tensor output, Activation activation)
    {
        int rows = x.Dim(0);
        if (Compute != ComputePrecision.Bf16 || rows < Bf16MinRows || Bf16.UnavailableReason is not null)
        {
            base.LinearCore(x, weight, bias, output, activation);
            return;
        }
        if (bias is not null) { CheckF32(bias, nameof(bias)); if (bias.Length != weight.Dim(0)) throw new ArgumentException($"Linear bias {bias} should have {weight.Dim(0)} elements."); }
        var packed = _bf16Weights.Linear(Bf16, weight);
        var (xArr, xOff) = Raw(x);
        var (yArr, yOff) = Raw(output);
        var (bArr, bOff) = bias is null ? (null, 0) : Raw(bias);
        fixed (float* px = xArr, py = yArr, pb = bArr)
            Bf16Products.Linear(Bf16, packed, px + xOff, rows, pb == null ? null : pb + bOff, py + yOff, activation, Parallelism);
    }

    /// <summary>The convolution under bf16 compute; false when it must run in float32.</summary>
    private unsafe bool TryConv2dBf16(Tensor x, Tensor weight, Tensor? bias, Tensor output, int stride, int padding)
    {
        if (Compute != ComputePrecision.Bf16 || Bf16.UnavailableReason is not null) return false;
        var packed = _bf16Weights.Conv(Bf16, weight);
        var (xArr, xOff) = Raw(x);
        var (oArr, oOff) = Raw(output);
        var (bArr, bOff) = bias is null ? (null, 0) : Raw(bias);
        fixed (float* px = xArr, po = oArr, pb = bArr)
            Bf16Products.Conv(Bf16, packed, px + xOff, x.Dim(0), x.Dim(1), x.Dim(2), x.Dim(3), weight.Dim(2), weight.Dim(3), stride, padding,
                pb == null ? null : pb + bOff, po + oOff, output.Dim(2), output.Dim(3), Parallelism);
        return true;
    }
}
