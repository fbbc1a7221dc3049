using Engine.Core;

namespace Engine.Generation;

/// <summary>
/// Watches one batch's samples for NaN and infinity on the device: after every step a finiteness check
/// marks, per image, the first step its samples went non-finite (<see cref="Device.MarkNonFinite"/>, no
/// host copy); the few marker values come back to the host only every <see cref="ReadInterval"/> steps and
/// at the end, so a batch that has gone wholly non-finite stops early and a healthy one costs one small
/// read-back per interval.
/// </summary>
internal sealed class NonFiniteWatch : IDisposable
{
    /// <summary>Steps between read-backs of the markers.</summary>
    public const int ReadInterval = 8;

    private readonly Device _device;
    private readonly Tensor _sample;
    private readonly Tensor _marker;
    private readonly float[] _host;

    /// <summary>Watches <paramref name="sample"/> [n, ...] (one marker per image).</summary>
    public NonFiniteWatch(Device device, Tensor sample)
    {
        _device = device;
        _sample = sample;
        _host = new float[sample.Dim(0)];
        _marker = device.Allocate(_host.Length);
        device.Fill(_marker, 0f);
    }

    /// <summary>Checks the initial noise (step 0), once it is in the sample.</summary>
    // Step s is stored as a mark of s + 1, since 0 means clean.
    public void Start() => _device.MarkNonFinite(_sample, _marker, 1f);

    /// <summary>
    /// Marks after 0-based step <paramref name="step"/>; every <see cref="ReadInterval"/> steps reads the markers
    /// and returns true when every image of the batch has gone non-finite (nothing left worth sampling).
    /// </summary>
    public bool AfterStep(int step)
    {
        _device.MarkNonFinite(_sample, _marker, step + 2);
        if ((step + 1) % ReadInterval != 0) return false;
        Read();
        return Array.TrueForAll(_host, m => m != 0);
    }

    /// <summary>
    /// Final check after the last of <paramref name="totalSteps"/> steps: per image of the batch, the step at which
    /// its samples first went non-finite (1-based; 0 = the initial noise), or -1 where they stayed finite.
    /// </summary>
    public int[] FirstSteps(int totalSteps)
    {
        _device.MarkNonFinite(_sample, _marker, totalSteps + 1);
        Read();
        return _host.Select(m => m == 0 ? -1 : (int)m - 1).ToArray();
    }

    private void Read() => _device.Download(_marker, _host);

    public void Dispose() => _marker.Dispose();
}
