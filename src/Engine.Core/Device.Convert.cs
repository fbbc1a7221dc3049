using Engine.Core.Profiling;

namespace Engine.Core;

public abstract partial class Device
{
    /// <summary>Copies src into dst (same length), converting between storage dtypes.</summary>
    public void Copy(Tensor src, Tensor dst)
    {
        CheckDevice(src, nameof(src)); CheckDevice(dst, nameof(dst)); CheckSameLength(src, dst, "Copy");
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Convert(src, dst));
        CopyCore(src, dst);
    }

    /// <summary>A new tensor (owned by the caller) of <paramref name="source"/>'s shape holding its values stored as <paramref name="dtype"/>.</summary>
    public Tensor Convert(Tensor source, DType dtype)
    {
        CheckDevice(source, nameof(source));
        var result = Allocate(dtype, source.ShapeArray());
        using var profile = Profiler is null ? default : BeginOp(OpKeys.Convert(source, result));
        try { CopyCore(source, result); }
        catch { result.Dispose(); throw; }
        return result;
    }

    /// <summary>Implements <see cref="Copy"/> (any dtype pair).</summary>
    protected abstract void CopyCore(Tensor src, Tensor dst);
}
