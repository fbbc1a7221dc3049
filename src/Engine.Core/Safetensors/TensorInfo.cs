namespace Engine.Core.Safetensors;

/// <summary>Element types a safetensors file may declare that this engine reads.</summary>
public enum StorageType
{
    /// <summary>float32.</summary>
    F32,
    /// <summary>float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>float64 (read and converted).</summary>
    F64,
    /// <summary>int64 (read and converted).</summary>
    I64,
    /// <summary>int32 (read and converted).</summary>
    I32,
}

/// <summary>One tensor's header entry: name, storage type, shape and byte range within the data section.</summary>
public sealed record TensorInfo(string Name, StorageType Type, int[] Shape, long Begin, long End)
{
    /// <summary>Bytes per element of <see cref="Type"/>.</summary>
    public int ElementSize => Type switch { StorageType.F64 or StorageType.I64 => 8, StorageType.F32 or StorageType.I32 => 4, _ => 2 };

    /// <summary>Number of elements.</summary>
    public long Length => Tensor.ShapeLength(Shape);

    /// <summary>Size in bytes of the data.</summary>
    public long ByteLength => End - Begin;

    /// <summary>The matching compute dtype when the storage can be used directly on a device.</summary>
    public DType? DeviceType => Type switch { StorageType.F32 => DType.F32, StorageType.F16 => DType.F16, StorageType.BF16 => DType.BF16, _ => null };
}
