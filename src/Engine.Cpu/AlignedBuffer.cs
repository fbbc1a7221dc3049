using System.Runtime.InteropServices;

namespace Engine.Cpu;

/// <summary>
/// A 64-byte aligned native float buffer that grows on demand and is kept for reuse, so kernels that
/// need aligned scratch on every call (attention's packed operands) do not allocate, and fault in
/// fresh pages, per call. Hold one per thread ([ThreadStatic]) for small buffers only: it keeps its largest size for
/// the thread's life (counted in <see cref="PerThreadScratch"/>); large scratch comes from <see cref="KernelScratch"/>.
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
        long grown = Math.Max(count, _capacity * 2);
        PerThreadScratch.Add((grown - _capacity) * sizeof(float));
        _capacity = grown;
        _data = (float*)NativeMemory.AlignedAlloc((nuint)(_capacity * sizeof(float)), 64);
        return _data;
    }

    ~AlignedBuffer()
    {
        if (_data != null) NativeMemory.AlignedFree(_data);
        PerThreadScratch.Add(-_capacity * sizeof(float));
    }
}
