namespace Engine.Core;

public abstract partial class Device
{
    private ComputePrecision _compute;

    /// <summary>
    /// Input precision of <see cref="MatMul"/>'s weight products (<see cref="Linear"/>) and <see cref="Conv2d"/>
    /// (default <see cref="ComputePrecision.F32"/>). Setting a precision the device lacks throws with the reason.
    /// Attention, norms, softmax and element-wise ops are float32 in every mode.
    /// </summary>
    public ComputePrecision Compute
    {
        get => _compute;
        set
        {
            if (value != ComputePrecision.F32 && ComputeUnavailableReason(value) is { } reason)
                throw new NotSupportedException($"Compute precision {value.ToString().ToLowerInvariant()} is not available on {Name}: {reason}");
            _compute = value;
        }
    }

    /// <summary>Null when the device can compute in <paramref name="precision"/>, else why not (for errors and <c>engine info</c>).</summary>
    public virtual string? ComputeUnavailableReason(ComputePrecision precision) =>
        precision == ComputePrecision.F32 ? null : "only float32 compute is implemented on this device";

    /// <summary>
    /// Whether bf16 compute is expected to be faster than float32 here, which <see cref="ComputeMode.Auto"/>
    /// requires besides availability (a device may offer bf16 for its memory or accuracy trade-off alone).
    /// </summary>
    public virtual bool PrefersBf16 => false;

    /// <summary>The precision <paramref name="mode"/> means on this device (<see cref="ComputeMode.Auto"/>: bf16 where available and faster).</summary>
    public ComputePrecision Resolve(ComputeMode mode) => mode switch
    {
        ComputeMode.Bf16 => ComputePrecision.Bf16,
        ComputeMode.Auto => PrefersBf16 && ComputeUnavailableReason(ComputePrecision.Bf16) is null ? ComputePrecision.Bf16 : ComputePrecision.F32,
        _ => ComputePrecision.F32,
    };
}
