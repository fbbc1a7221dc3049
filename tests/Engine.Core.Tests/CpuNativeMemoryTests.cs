using System.Runtime.CompilerServices;
using Engine.Core;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU device's buffers are native memory: freed the moment the pool drops them (no collection needed),
/// a never-disposed tensor's memory is freed at the next pool trim (never while an op may read it), and indexing
/// stays bounds-checked as with arrays.
/// </summary>
public class CpuNativeMemoryTests
{
    [Test]
    public void ADroppedBufferIsFreedAtOnce()
    {
        using var device = new CpuDevice(1);
        Assert.That(device.NativeBytes, Is.Zero);
        var t = device.Allocate(1000);
        Assert.That(device.NativeBytes, Is.EqualTo(4000));
        t.Dispose();
        Assert.That(device.NativeBytes, Is.EqualTo(4000), "pooled for reuse");
        using (device.Allocate(DType.F16, 1000)) Assert.That(device.NativeBytes, Is.EqualTo(6000));
        device.TrimPool();
        Assert.That(device.NativeBytes, Is.Zero, "the pool dropped both: freed without a collection");
    }

    [Test]
    public void AMissFreesWhatItDropsBeforeCreating()
    {
        using var device = new CpuDevice(1);
        device.Allocate(1000).Dispose();
        using var big = device.Allocate(3000); // a miss: the free 1000 is dropped (smaller, worth less than 3000)
        Assert.That(device.NativeBytes, Is.EqualTo(12000));
    }

    [Test]
    public void AnUndisposedTensorIsFreedAtTheNextTrim()
    {
        using var device = new CpuDevice(1);
        Leak(device);
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Assert.That(device.NativeBytes, Is.EqualTo(8000), "finalized, but kept until no op can be reading it");
        device.TrimPool();
        Assert.That(device.NativeBytes, Is.Zero);
    }

    [Test]
    public void ATensorOutlivingItsDeviceIsFreedOnDispose()
    {
        var device = new CpuDevice(1);
        var t = device.Upload(new float[] { 1, 2, 3 }, 3);
        device.Dispose();
        Assert.That(t.ToArray(), Is.EqualTo(new float[] { 1, 2, 3 }), "a live tensor keeps its memory");
        t.Dispose();
        Assert.That(device.NativeBytes, Is.Zero);
    }

    [Test]
    public void IndexingIsBoundsChecked()
    {
        using var device = new CpuDevice(1);
        using var t = device.Allocate(4);
        var (array, offset) = CpuDevice.Raw(t);
        Assert.That(array.Length, Is.EqualTo(4));
        Assert.Throws<IndexOutOfRangeException>(() => array[4] = 1f);
        Assert.Throws<IndexOutOfRangeException>(() => array[-1] = 1f);
        Assert.Throws<ArgumentOutOfRangeException>(() => array.AsSpan(offset + 2, 3));
        array.AsSpan(offset, 4).Fill(2f);
        Assert.That(t.ToArray(), Is.EqualTo(new float[] { 2, 2, 2, 2 }));
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Leak(CpuDevice device) => device.Allocate(2000);
}
