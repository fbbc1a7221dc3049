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
    /// are; otherwise the base class hands it float32 stand-ins. Asked only when an operand is half.
    /// </summary>
    protected virtual bool HandlesHalfActivations(string op) => false;

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

    private static bool IsHalf(Tensor? t) => t is not null && t.DType != DType.F32;
}
