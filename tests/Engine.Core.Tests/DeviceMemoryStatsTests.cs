using Engine.Core;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// <see cref="TransferStats"/> counts the bytes of device buffers held by live tensors and by the pool, and their
/// peaks, through allocation, reuse, release and trimming (what <c>generate --timings</c> reports).
/// </summary>
public class DeviceMemoryStatsTests
{
    [Test]
    public void LiveAndPooledBytesFollowTheTensorsAndThePool()
    {
        using var device = new CpuDevice();
        var stats = device.Transfers;
        long live0 = stats.LiveBytes, pooled0 = stats.PooledBytes;
        stats.ResetPeaks();

        var a = device.Allocate(1000);                    // 4000 bytes, fresh
        var b = device.Allocate(DType.F16, 10, 100);      // 2000 bytes, fresh
        Assert.That(stats.LiveBytes - live0, Is.EqualTo(6000));
        a.Dispose();                                      // to the pool
        Assert.That((stats.LiveBytes - live0, stats.PooledBytes - pooled0), Is.EqualTo((2000L, 4000L)));
        var c = device.Allocate(10, 100);                 // same size as a: taken from the pool
        Assert.That((stats.LiveBytes - live0, stats.PooledBytes - pooled0), Is.EqualTo((6000L, 0L)));
        Assert.That(stats.PeakLiveBytes - live0, Is.EqualTo(6000));
        Assert.That(stats.PeakHeldBytes - live0 - pooled0, Is.EqualTo(6000));

        var d = device.Allocate(500);                     // 2000 bytes more: peak 8000 live
        d.Dispose();
        c.Dispose();
        b.Dispose();
        Assert.That((stats.LiveBytes - live0, stats.PooledBytes - pooled0), Is.EqualTo((0L, 8000L)));
        Assert.That(stats.PeakLiveBytes - live0, Is.EqualTo(8000));
        device.TrimPool();
        Assert.That(stats.PooledBytes, Is.Zero);
        stats.ResetPeaks();
        Assert.That((stats.PeakLiveBytes, stats.PeakHeldBytes), Is.EqualTo((stats.LiveBytes, stats.LiveBytes)));
    }
}
