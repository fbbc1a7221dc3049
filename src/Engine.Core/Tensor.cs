namespace Engine.Core;

/// <summary>
/// A contiguous, row-major (NCHW for images) view over a <see cref="DeviceBuffer"/> owned by one
/// <see cref="Device"/>. A tensor made by <see cref="Device.Allocate(int[])"/> owns its buffer and
/// returns it to the device's pool on <see cref="Dispose"/>; views made by <see cref="Reshape"/> or
/// <see cref="Slice"/> share the buffer and never free it.
/// </summary>
public sealed class Tensor : IDisposable
{
    private readonly int[] _shape;
    private bool _disposed;

    internal Tensor(Device device, DeviceBuffer buffer, long offset, int[] shape, bool ownsBuffer)
    {
        Device = device;
        Buffer = buffer;
        Offset = offset;
        _shape = shape;
        OwnsBuffer = ownsBuffer;
        Length = ShapeLength(shape);
    }

    /// <summary>The device whose memory holds this tensor.</summary>
    public Device Device { get; }

    /// <summary>The storage; device implementations downcast it to their own buffer type.</summary>
    public DeviceBuffer Buffer { get; }

    /// <summary>Element offset of this view into <see cref="Buffer"/>.</summary>
    public long Offset { get; }

    /// <summary>Whether disposing this tensor returns its buffer to the pool.</summary>
    public bool OwnsBuffer { get; }

    /// <summary>Storage element type.</summary>
    public DType DType => Buffer.DType;

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of dimensions.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements.</summary>
    public long Length { get; }

    /// <summary>Size of dimension <paramref name="axis"/>; negative axes count from the end.</summary>
    public int Dim(int axis) => _shape[axis < 0 ? _shape.Length + axis : axis];

    /// <summary>A copy of the shape.</summary>
    public int[] ShapeArray() => (int[])_shape.Clone();

    /// <summary>A view with another shape of the same element count; one dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        var resolved = (int[])shape.Clone();
        int infer = Array.IndexOf(resolved, -1);
        if (infer >= 0)
        {
            long known = 1;
            for (int i = 0; i < resolved.Length; i++) if (i != infer) known *= resolved[i];
            if (known == 0 || Length % known != 0)
                throw new ArgumentException($"Cannot reshape {ShapeString(_shape)} to {ShapeString(shape)}.");
            resolved[infer] = (int)(Length / known);
        }
        if (ShapeLength(resolved) != Length)
            throw new ArgumentException($"Cannot reshape {ShapeString(_shape)} ({Length} elements) to {ShapeString(shape)}.");
        return new Tensor(Device, Buffer, Offset, resolved, ownsBuffer: false);
    }

    /// <summary>A view of <paramref name="count"/> entries of the outermost dimension from <paramref name="start"/>.</summary>
    public Tensor Slice(int start, int count)
    {
        if (Rank == 0 || start < 0 || count < 0 || start + count > _shape[0])
            throw new ArgumentOutOfRangeException(nameof(start), $"Slice [{start}, {start + count}) is outside dimension 0 of {ShapeString(_shape)}.");
        var shape = (int[])_shape.Clone();
        shape[0] = count;
        long inner = Rank == 0 ? 1 : Length / Math.Max(1, _shape[0]);
        return new Tensor(Device, Buffer, Offset + start * inner, shape, ownsBuffer: false);
    }

    /// <summary>Copies the values to a new host array (counted as a download).</summary>
    public float[] ToArray() => Device.Download(this);

    /// <summary>Returns an owned buffer to the device's pool; a view does nothing.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (OwnsBuffer) Device.Return(Buffer);
    }

    /// <inheritdoc />
    public override string ToString() => $"Tensor{ShapeString(_shape)} {DType} on {Device.Name}";

    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public static long ShapeLength(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"Negative dimension in shape {ShapeString(shape)}.");
            n *= d;
        }
        return n;
    }

    /// <summary>Formats a shape as [a, b, c].</summary>
    public static string ShapeString(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}
