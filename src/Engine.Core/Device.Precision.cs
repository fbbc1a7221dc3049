namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>
    /// Whether ops accept F16 and BF16 activation tensors (inputs, outputs, biases and norm affines) beside
    /// float32. Every product and reduction still accumulates in float32; ops whose backend has no half
    /// kernel widen their half operands into float32 copies and round the result back
    /// (<see cref="HalfStaging"/>). False by default: such a device computes with float32 activations
    /// only and names the tensor that is not.
    /// </summary>
    public virtual bool SupportsHalfActivations => false;

    /// <summary>
    /// Whether the device's own <c>*Core</c> method of the op named <paramref name="op"/> (the public method's
    /// name: <c>MatMul</c>, <c>Conv2d</c>, <c>Attention</c>, <c>GroupNorm</c>, ...) takes half activations as they
    /// are, given the storages of its <paramref name="data"/>: the activations it reads and writes, in the public
    /// method's order (biases, norm affines, modulation vectors and gates are the device's own concern). Otherwise the
    /// base class hands it float32 stand-ins for every operand. Asked only when an operand is half.
    /// </summary>
    protected virtual bool HandlesHalfActivations(string op, params ReadOnlySpan<Tensor> data) => false;

    /// <summary>A staging scope for the half tensors of one op; see <see cref="HalfStaging"/>.</summary>
    protected HalfStaging Stage() => new(this);

    /// <summary>
    /// Throws unless <paramref name="t"/> lives on this device and is float32, or F16 / BF16 on a device
    /// that <see cref="SupportsHalfActivations">supports half activations</see>.
    /// </summary>
    protected void CheckCompute(Tensor t, string name)
    {
        if (t.DType == DType.F32 || !SupportsHalfActivations) { CheckF32(t, name); return; }
        CheckDevice(t, name);
    }

    /// <summary>Whether any of the tensors is stored in half precision (then the op stages, unless the device handles it).</summary>
    protected static bool AnyHalf(Tensor? a, Tensor? b = null, Tensor? c = null, Tensor? d = null, Tensor? e = null) =>
        IsHalf(a) || IsHalf(b) || IsHalf(c) || IsHalf(d) || IsHalf(e);

    /// <summary>Whether every tensor is stored in one and the same 16-bit format (F16 or BF16).</summary>
    protected static bool SameHalf(params ReadOnlySpan<Tensor> tensors)
    {
        if (tensors.Length == 0 || tensors[0].DType == DType.F32) return false;
        foreach (var t in tensors)
            if (t.DType != tensors[0].DType) return false;
        return true;
    }

    private static bool IsHalf(Tensor? t) => t is not null && t.DType != DType.F32;
}
