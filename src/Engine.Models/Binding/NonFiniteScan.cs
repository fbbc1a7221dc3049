using System.Numerics;
using System.Runtime.InteropServices;
using Engine.Core.Safetensors;

namespace Engine.Models.Binding;

/// <summary>
/// Finds NaN and infinity in stored weights as they load, on the mapped bytes: a value is non-finite exactly
/// when all its exponent bits are set, so the scan is a masked compare over the raw words, with no conversion.
/// </summary>
public static class NonFiniteScan
{
    /// <summary>Index of the first NaN or infinite element of <paramref name="bytes"/> stored as <paramref name="type"/>, or -1 (also for integer types).</summary>
    public static long FirstNonFinite(ReadOnlySpan<byte> bytes, StorageType type) => type switch
    {
        StorageType.F32 => First(MemoryMarshal.Cast<byte, uint>(bytes), 0x7F80_0000u),
        StorageType.F16 => First(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7C00),
        StorageType.BF16 => First(MemoryMarshal.Cast<byte, ushort>(bytes), (ushort)0x7F80),
        StorageType.F64 => First(MemoryMarshal.Cast<byte, ulong>(bytes), 0x7FF0_0000_0000_0000ul),
        _ => -1,
    };

    private static long First<T>(ReadOnlySpan<T> words, T exponent) where T : unmanaged, IBinaryInteger<T>
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated && Vector<T>.IsSupported)
        {
            var mask = new Vector<T>(exponent);
            var vectors = MemoryMarshal.Cast<T, Vector<T>>(words);
            for (int v = 0; v < vectors.Length; v++)
            {
                if (Vector.EqualsAny(vectors[v] & mask, mask))
                {
                    i = v * Vector<T>.Count;
                    break;
                }
                i = (v + 1) * Vector<T>.Count;
            }
        }
        for (; i < words.Length; i++)
            if ((words[i] & exponent) == exponent) return i;
        return -1;
    }
}
