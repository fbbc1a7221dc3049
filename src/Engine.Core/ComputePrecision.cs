namespace Engine.Core;

/// <summary>
/// Input precision of a device's GEMMs and convolutions (<see cref="Device.Compute"/>). Products always
/// accumulate in float32, and normalisation, softmax and element-wise ops stay float32 in every mode.
/// </summary>
public enum ComputePrecision
{
    /// <summary>float32 inputs: the default, and the mode every parity test with diffusers runs in.</summary>
    F32,
    /// <summary>bf16 inputs (activations rounded per call, weights converted once) with float32 accumulation.</summary>
    Bf16,
}

/// <summary>What a request asks for: a precision, or <see cref="Auto"/> (bf16 where the device has it, else float32).</summary>
public enum ComputeMode
{
    /// <summary>float32 (the default).</summary>
    F32,
    /// <summary>bf16; an error on a device without it.</summary>
    Bf16,
    /// <summary>bf16 where the device supports it and expects it to be faster (<see cref="Device.PrefersBf16"/>), float32 elsewhere.</summary>
    Auto,
}
