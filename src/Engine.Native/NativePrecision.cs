using Engine.Core;
using Engine.Generation;

namespace Engine.Native;

/// <summary>
/// <c>engine_request.precision</c> (<c>engine_precision</c>) and <c>compute</c> (<c>engine_compute</c>), since
/// interface 0.7.0: their values read into <see cref="GenerationRequest.Precision"/> and
/// <see cref="GenerationRequest.Compute"/>, and the check against the context's device that makes a valid value the
/// device cannot do <c>ENGINE_UNSUPPORTED</c> (a <see cref="NotSupportedException"/>) rather than a bad argument.
/// </summary>
internal static class NativePrecision
{
    // engine_precision and engine_compute values of engine.h.
    private const int PrecisionDefault = 0, PrecisionF32 = 1, PrecisionF16 = 2, PrecisionBf16 = 3;
    private const int ComputeF32 = 0, ComputeBf16 = 1, ComputeAuto = 2;

    /// <summary>request.precision as an activation storage; null for ENGINE_PRECISION_DEFAULT (the device's default).</summary>
    public static DType? Activations(int value) => value switch
    {
        PrecisionDefault => null,
        PrecisionF32 => DType.F32,
        PrecisionF16 => DType.F16,
        PrecisionBf16 => DType.BF16,
        _ => throw new ArgumentException($"request.precision {value} is not an engine_precision (ENGINE_PRECISION_DEFAULT 0, " +
                                         $"ENGINE_PRECISION_F32 1, ENGINE_PRECISION_F16 2, ENGINE_PRECISION_BF16 3)"),
    };

    /// <summary>request.compute as a <see cref="ComputeMode"/>.</summary>
    public static ComputeMode Compute(int value) => value switch
    {
        ComputeF32 => ComputeMode.F32,
        ComputeBf16 => ComputeMode.Bf16,
        ComputeAuto => ComputeMode.Auto,
        _ => throw new ArgumentException($"request.compute {value} is not an engine_compute (ENGINE_COMPUTE_F32 0, " +
                                         $"ENGINE_COMPUTE_BF16 1, ENGINE_COMPUTE_AUTO 2)"),
    };

    /// <summary>Refuses, naming the field and the reason, a precision or compute mode <paramref name="device"/> cannot run.</summary>
    public static void Check(Device device, GenerationRequest request)
    {
        if (request.Precision is { } precision && precision != DType.F32 && !device.SupportsHalfActivations)
            throw new NotSupportedException($"request.precision ENGINE_PRECISION_{precision.StorageName().ToUpperInvariant()}: {device.Name} computes with " +
                                            "f32 activations only; half activations need an ILGPU device (cuda, opencl or ilgpu-cpu)");
        if (request.Compute == ComputeMode.Bf16 && device.ComputeUnavailableReason(ComputePrecision.Bf16) is { } reason)
            throw new NotSupportedException($"request.compute ENGINE_COMPUTE_BF16 is not available on {device.Name}: {reason}");
    }
}
