namespace Engine.Core;

/// <summary>
/// Float32 stand-ins for the F16 / BF16 tensors of one op on a device whose kernel for that op reads
/// and writes float32 only: half inputs are widened (exactly) into pooled float32 copies, half outputs
/// get a float32 scratch tensor that <see cref="Commit"/> rounds back (round to nearest even). All math
/// then runs in float32, so only the storage between ops is half precision. Float32 tensors pass
/// through untouched, so float32 runs are unchanged. Dispose returns the copies to the pool.
/// </summary>
public sealed class HalfStaging : IDisposable
{
    private readonly Device _device;
    private List<Tensor>? _temporaries;
    private List<(Tensor Wide, Tensor Target)>? _pending;

    internal HalfStaging(Device device) => _device = device;

    /// <summary>An input as float32: the tensor itself, or a widened copy.</summary>
    public Tensor In(Tensor t)
    {
        if (t.DType == DType.F32) return t;
        var wide = _device.Convert(t, DType.F32);
        (_temporaries ??= []).Add(wide);
        return wide;
    }

    /// <summary>An optional input as float32.</summary>
    public Tensor? InOptional(Tensor? t) => t is null ? null : In(t);

    /// <summary>
    /// An output as float32: the tensor itself, or a scratch tensor of its shape written back by
    /// <see cref="Commit"/>. With <paramref name="keepContents"/> the scratch starts as a widened copy
    /// (ops that write only part of their output).
    /// </summary>
    public Tensor Out(Tensor t, bool keepContents = false)
    {
        if (t.DType == DType.F32) return t;
        var wide = keepContents ? _device.Convert(t, DType.F32) : _device.Allocate(DType.F32, t.ShapeArray());
        (_temporaries ??= []).Add(wide);
        (_pending ??= []).Add((wide, t));
        return wide;
    }

    /// <summary>Rounds the float32 results into their half-precision outputs.</summary>
    public void Commit()
    {
        if (_pending is null) return;
        foreach (var (wide, target) in _pending) _device.Copy(wide, target);
        _pending = null;
    }

    /// <summary>Returns the float32 copies to the device's pool.</summary>
    public void Dispose()
    {
        if (_temporaries is null) return;
        foreach (var t in _temporaries) t.Dispose();
        _temporaries = null;
    }
}
