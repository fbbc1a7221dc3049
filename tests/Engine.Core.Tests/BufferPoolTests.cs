using Engine.Core;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The device pool's policy (<see cref="BufferPool"/>): a request reuses the smallest free buffer that holds it up
/// to twice its length, a miss drops smaller free buffers worth its size, the optional limit drops the oldest, a
/// repeated pattern settles to no allocation, and no buffer ever backs two live tensors.
/// </summary>
public class BufferPoolTests
{
    // Without the memory arena: with it, the CPU device does not pool buffers of 64 KiB and more (NativeArenaTests).
    private static CpuDevice NewDevice() => new(1, arena: false);

    [Test]
    public void ALargerFreeBufferServesASmallerRequest()
    {
        using var device = NewDevice();
        device.Allocate(1000).Dispose();
        long allocations = device.Transfers.Allocations;
        using var t = device.Allocate(600);
        Assert.That(device.Transfers.Allocations, Is.EqualTo(allocations), "taken from the pool");
        Assert.That((t.Length, t.Buffer.Length), Is.EqualTo((600L, 1000L)));
        Assert.That(device.Transfers.PooledBytes, Is.Zero);
        // The tensor sees its own length only: a write covers 600 values and reads back as written.
        device.Fill(t, 3f);
        Assert.That(t.ToArray(), Has.Length.EqualTo(600).And.All.EqualTo(3f));
    }

    [Test]
    public void AnExactFitIsTakenBeforeALargerOne()
    {
        using var device = NewDevice();
        var a = device.Allocate(1500);
        var b = device.Allocate(1000);
        var bBuffer = b.Buffer;
        a.Dispose();
        b.Dispose();
        using var c = device.Allocate(1000);
        Assert.That(c.Buffer, Is.SameAs(bBuffer));
    }

    [Test]
    public void ABufferMoreThanTwiceTheRequestIsNotTiedUp()
    {
        using var device = NewDevice();
        device.Allocate(1000).Dispose();
        long allocations = device.Transfers.Allocations;
        using var t = device.Allocate(499);
        Assert.That(device.Transfers.Allocations, Is.EqualTo(allocations + 1), "a fresh buffer");
        Assert.That(t.Buffer.Length, Is.EqualTo(499));
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(4000), "the larger one stays pooled");
    }

    [Test]
    public void ALargeRequestTakesABufferAtMostAnEighthLarger()
    {
        using var device = NewDevice();
        int large = (int)(BufferPool.LargeBytes / 4); // floats: 64 MiB
        device.Allocate(large + large / 8).Dispose();
        long allocations = device.Transfers.Allocations;
        using (var t = device.Allocate(large))
        {
            Assert.That(device.Transfers.Allocations, Is.EqualTo(allocations), "1/8 larger: reused");
            Assert.That(t.Buffer.Length, Is.EqualTo(large + large / 8));
        }
        // Twice the request: refused (half of it would be idle) and dropped, so the exact one replaces it.
        device.TrimPool();
        device.Allocate(2 * large).Dispose();
        using (var t = device.Allocate(large))
        {
            Assert.That(t.Buffer.Length, Is.EqualTo(large), "a fresh buffer of the request's size");
            Assert.That(device.Transfers.PooledBytes, Is.Zero, "the refused buffer was freed, not kept beside it");
            Assert.That(device.NativeBytes, Is.EqualTo(BufferPool.LargeBytes));
        }
        // Just under the large size, twice is still allowed.
        device.TrimPool();
        device.Allocate(2 * large - 2).Dispose();
        using (var t = device.Allocate(large - 1)) Assert.That(t.Buffer.Length, Is.EqualTo(2 * large - 2));
    }

    [Test]
    public void AMissDropsSmallerFreeBuffersWorthItsSizeLargestFirst()
    {
        using var device = NewDevice();
        var sizes = new[] { 100, 300, 500, 700, 5000 };
        var tensors = sizes.Select(s => device.Allocate(s)).ToList();
        tensors.ForEach(t => t.Dispose());
        // 1200 values: the 5000 is too large to reuse; 700 + 500 = 1200 smaller ones go, 300 and 100 stay.
        using var t = device.Allocate(1200);
        var left = device.PoolContents().Select(e => e.Length).OrderBy(l => l).ToArray();
        Assert.That(left, Is.EqualTo(new long[] { 100, 300, 5000 }));
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(4 * 5400));
    }

    [Test]
    public void APhaseThatGrowsKeepsOnlyItsLastSize()
    {
        using var device = NewDevice();
        foreach (int unit in new[] { 1, 2, 4, 8, 16 })
        {
            var live = Enumerable.Range(0, 3).Select(_ => device.Allocate(unit * 1000)).ToList();
            live.ForEach(t => t.Dispose());
        }
        // An exact-size pool would hold 3 of every size (3 x 31,000 values); this one holds the last three.
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(3 * 16000 * 4));
    }

    [Test]
    public void ARepeatedPatternSettlesToNoAllocation()
    {
        using var device = NewDevice();
        // A U-Net-like step: sizes down and up, with skips held across it and per-call temporaries between.
        int[] down = [4096, 4096, 1024, 2048, 512, 1024, 256], temporaries = [900, 3600, 14400, 57600, 14400, 3600, 900];
        void Step()
        {
            var skips = new List<Tensor>();
            for (int i = 0; i < down.Length; i++)
            {
                using var w = device.Allocate(temporaries[i]);
                skips.Add(device.Allocate(down[i]));
            }
            for (int i = down.Length - 1; i >= 0; i--)
            {
                using var cat = device.Allocate(2 * down[i]);
                using var w = device.Allocate(temporaries[i]);
                skips[i].Dispose();
            }
        }
        // Misses in the first steps drop buffers a later request of the step wanted; that settles.
        for (int i = 0; i < 3; i++) Step();
        long allocations = device.Transfers.Allocations;
        for (int i = 0; i < 5; i++) Step();
        Assert.That(device.Transfers.Allocations, Is.EqualTo(allocations), "steady state after three steps");
    }

    [Test]
    public void NoBufferBacksTwoLiveTensors()
    {
        using var device = NewDevice();
        var random = new Random(5);
        var live = new List<Tensor>();
        for (int op = 0; op < 2000; op++)
        {
            if (live.Count > 0 && random.Next(3) == 0)
            {
                int k = random.Next(live.Count);
                live[k].Dispose();
                live.RemoveAt(k);
            }
            else
            {
                int length = 1 + random.Next(1 << random.Next(4, 14));
                var t = device.Allocate(length);
                Assert.That(t.Buffer.Length, Is.InRange(length, 2L * length), "holds the request, at most twice it");
                Assert.That(live.Any(o => ReferenceEquals(o.Buffer, t.Buffer)), Is.False, $"op {op}: a live tensor's buffer was handed out again");
                live.Add(t);
            }
        }
        Assert.That(device.Transfers.LiveBytes, Is.EqualTo(live.Sum(t => t.Buffer.Length * 4)));
        live.ForEach(t => t.Dispose());
    }

    [Test]
    public void TheLimitDropsTheLeastRecentlyReturnedBuffers()
    {
        using var device = NewDevice();
        var tensors = new[] { 1000, 2000, 3000 }.Select(s => device.Allocate(s)).ToList();
        tensors.ForEach(t => t.Dispose());
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(24000));
        device.PoolLimitBytes = 20000;   // the 1000 went back first: it goes
        Assert.That(device.PoolContents().Select(e => e.Length).OrderBy(l => l), Is.EqualTo(new long[] { 2000, 3000 }));
        device.Allocate(3000).Dispose(); // returned again: now the newest
        device.PoolLimitBytes = 12000;   // the 2000 is oldest: it goes
        Assert.That(device.PoolContents().Select(e => e.Length), Is.EqualTo(new long[] { 3000 }));
        device.Allocate(1000).Dispose(); // a fresh one (the 3000 is over twice it): 16000 bytes, the older 3000 goes
        Assert.That(device.PoolContents().Select(e => e.Length), Is.EqualTo(new long[] { 1000 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.PoolLimitBytes = -1);
        device.PoolLimitBytes = null;
    }
}
