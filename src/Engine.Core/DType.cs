namespace Engine.Core;

/// <summary>Storage element type of a tensor. Every op computes in float32.</summary>
public enum DType
{
    /// <summary>IEEE 754 binary32.</summary>
    F32,
    /// <summary>IEEE 754 binary16.</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of a binary32.</summary>
    BF16,
}

/// <summary>Helpers for <see cref="DType"/>.</summary>
public static class DTypeExtensions
{
    /// <summary>The storage names user-facing options accept (<c>f32</c>, <c>f16</c>, <c>bf16</c>), as listed in errors.</summary>
    public const string StorageNames = "f32, f16, bf16";

    /// <summary>
    /// Parses a storage name: f32 / fp32 / float32, f16 / fp16 / float16, bf16 / bfloat16
    /// (case-insensitive); false for anything else.
    /// </summary>
    public static bool TryParseStorage(string text, out DType dtype)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "f32" or "fp32" or "float32": dtype = DType.F32; return true;
            case "f16" or "fp16" or "float16": dtype = DType.F16; return true;
            case "bf16" or "bfloat16": dtype = DType.BF16; return true;
            default: dtype = DType.F32; return false;
        }
    }

    /// <summary>The short storage name (<c>f32</c>, <c>f16</c>, <c>bf16</c>) that <see cref="TryParseStorage"/> reads back.</summary>
    public static string StorageName(this DType dtype) => dtype.ToString().ToLowerInvariant();

    /// <summary>Bytes per element.</summary>
    public static int Size(this DType dtype) => dtype == DType.F32 ? 4 : 2;

    /// <summary>Converts a bfloat16 bit pattern to float (exact).</summary>
    public static float BFloat16ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Converts a float to bfloat16 with round-to-nearest-even (NaN stays NaN).</summary>
    public static ushort SingleToBFloat16(float value)
    {
        uint bits = (uint)BitConverter.SingleToInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits >> 16) | 0x40);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }
}
