namespace Engine.Core;

/// <summary>
/// A block of device memory holding <see cref="Length"/> elements of <see cref="DType"/>. Devices
/// derive their own storage from it; tensors are views (offset + shape) over one buffer.
/// </summary>
public abstract class DeviceBuffer : IDisposable
{
    protected DeviceBuffer(DType dtype, long length)
    {
        DType = dtype;
        Length = length;
    }

    /// <summary>Element type of the storage.</summary>
    public DType DType { get; }

    /// <summary>Capacity in elements.</summary>
    public long Length { get; }

    /// <summary>Frees the memory (called by the pool when it is trimmed or the device is disposed).</summary>
    public abstract void Dispose();
}
