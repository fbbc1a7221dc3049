using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// A 64-byte aligned native float buffer that grows on demand and is kept for reuse, so kernels that
/// need aligned scratch on every call (attention's packed operands) do not allocate, and fault in
/// fresh pages, per call. Hold one per thread ([ThreadStatic]); the memory goes with the finalizer.
/// </summary>
internal sealed unsafe class AlignedBuffer
{
    private float* _data;
    private long _capacity;

    /// <summary>At least <paramref name="count"/> floats, 64-byte aligned; contents are undefined.</summary>
    public float* Ensure(long count)
    {
        if (count <= _capacity) return _data;
        if (_data != null) NativeMemory.AlignedFree(_data);
        _capacity = Math.Max(count, _capacity * 2);
        _data = (float*)NativeMemory.AlignedAlloc((nuint)(_capacity * sizeof(float)), 64);
        return _data;
    }

    ~AlignedBuffer()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
    }
}
