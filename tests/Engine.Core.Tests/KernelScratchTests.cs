using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU kernels' shared scratch (<see cref="KernelScratch"/>): a returned block is reused by the next rent that it
/// fits (at most twice the request), blocks are aligned and at least as large as asked, concurrent rents never share a
/// block, a block comes back when the renter throws, idle scratch gives way to a device buffer created on a pool miss
/// and the pool's idle buffers give way to a new block, and the kernels that rent it hold none after an op. These are
/// the rules of the free-block cache, which serves every rent where the memory arena does not (small blocks, other
/// systems): the tests turn the arena off for scratch and use devices without it (NativeArenaTests covers the arena).
/// </summary>
public class KernelScratchTests
{
    [SetUp]
    public void StartEmpty()
    {
        KernelScratch.UseArena = false;
        KernelScratch.Trim();
    }

    [TearDown]
    public void RestoreTheArena() => KernelScratch.UseArena = true;

    private static CpuDevice NewDevice() => new(1, arena: false);

    [Test]
    public unsafe void AReturnedBlockIsReusedByTheNextRentItFits()
    {
        float* first;
        using (var lease = KernelScratch.Rent(100_000)) first = lease.Pointer;
        long allocations = KernelScratch.Stats.Allocations, reuses = KernelScratch.Stats.Reuses;
        using (var again = KernelScratch.Rent(90_000))
        {
            Assert.That((nint)again.Pointer, Is.EqualTo((nint)first), "the free block holds 90000 floats");
            Assert.That(KernelScratch.Stats.Allocations, Is.EqualTo(allocations));
            Assert.That(KernelScratch.Stats.Reuses, Is.EqualTo(reuses + 1));
        }
        // More than twice the request: a small rent gets its own block rather than tying the large one up.
        using var small = KernelScratch.Rent(1000);
        Assert.That((nint)small.Pointer, Is.Not.EqualTo((nint)first));
        Assert.That(KernelScratch.Stats.Allocations, Is.EqualTo(allocations + 1));
    }

    [Test]
    public void AMissDropsOnlyIdleSmallerBlocks()
    {
        KernelScratch.Rent(1 << 16).Dispose(); // 256 KiB, then unused
        for (int op = 0; op <= KernelScratch.IdleOps; op++) KernelScratch.Rent(1 << 18).Dispose(); // 1 MiB, used by every op
        using (KernelScratch.Rent(1 << 20))
        {
            // A miss for 4 MiB: the idle 256 KiB block goes, the 1 MiB one used by the last op stays for the next.
            Assert.That(KernelScratch.Stats.HeldBytes, Is.EqualTo((4L << 20) + (1L << 20)));
            Assert.That(KernelScratch.Stats.FreeBlocks, Is.EqualTo(1));
        }
    }

    [Test]
    public unsafe void AThreadGetsBackTheBlockItReturned()
    {
        // Two free blocks of one size, returned by two threads: each thread's next rent takes its own.
        float* mine, theirs = null;
        using var rented = new ManualResetEventSlim();
        using var mineReturned = new ManualResetEventSlim();
        var a = KernelScratch.Rent(100_000);
        mine = a.Pointer;
        var other = new Thread(() =>
        {
            var b = KernelScratch.Rent(100_000); // while a is rented: another block
            theirs = b.Pointer;
            rented.Set();
            mineReturned.Wait();
            b.Dispose(); // returned last: the newer of the two
        });
        other.Start();
        rented.Wait();
        a.Dispose();
        mineReturned.Set();
        other.Join();
        using var again = KernelScratch.Rent(100_000);
        Assert.That((nint)again.Pointer, Is.EqualTo((nint)mine), "this thread's block, though the other thread's is newer");
        Assert.That((nint)theirs, Is.Not.EqualTo((nint)mine));
    }

    [Test]
    public unsafe void ABlockIsAlignedAndHoldsTheRequest([Values(0L, 1L, 16_383L, 16_384L, 16_385L, 3_000_000L)] long floats)
    {
        using var lease = KernelScratch.Rent(floats);
        Assert.That((long)lease.Pointer % 64, Is.Zero);
        Assert.That(lease.Bytes, Is.GreaterThanOrEqualTo(floats * sizeof(float)));
        Assert.That(lease.Bytes % KernelScratch.Granule, Is.Zero);
        Assert.That(lease.Bytes, Is.LessThan(floats * sizeof(float) + 2 * KernelScratch.Granule));
        // The whole block is writable.
        new Span<float>(lease.Pointer, (int)(lease.Bytes / sizeof(float))).Fill(1f);
        Assert.That(KernelScratch.Stats.InUseBytes, Is.EqualTo(lease.Bytes));
    }

    [Test]
    public unsafe void ConcurrentRentsNeverShareABlock()
    {
        int failures = 0;
        Parallel.For(0, 4000, new ParallelOptions { MaxDegreeOfParallelism = 8 }, i =>
        {
            long floats = 1000 + i % 7 * 20_000;
            using var lease = KernelScratch.Rent(floats);
            var block = new Span<float>(lease.Pointer, (int)floats);
            block.Fill(i);
            Thread.Yield();
            foreach (var v in block)
                if (v != i) { Interlocked.Increment(ref failures); break; }
        });
        Assert.That(failures, Is.Zero, "a block was written by two renters at once");
        var stats = KernelScratch.Stats;
        Assert.That(stats.InUseBytes, Is.Zero, "every block came back");
        Assert.That(stats.Reuses, Is.GreaterThan(0));
        // Held blocks are bounded by what was in use at once (at most 8 renters), not by the number of rents.
        Assert.That(stats.HeldBytes, Is.LessThanOrEqualTo(8L * (1000 + 6 * 20_000) * sizeof(float) * 2 + 8 * KernelScratch.Granule));
    }

    [Test]
    public unsafe void ABlockComesBackWhenTheRenterThrows()
    {
        float* rented = null;
        void Kernel()
        {
            using var lease = KernelScratch.Rent(50_000);
            rented = lease.Pointer;
            throw new InvalidOperationException("kernel failed");
        }
        Assert.Throws<InvalidOperationException>(Kernel);
        Assert.That(KernelScratch.Stats.InUseBytes, Is.Zero);
        using var next = KernelScratch.Rent(50_000);
        Assert.That((nint)next.Pointer, Is.EqualTo((nint)rented), "returned, then reused");
    }

    [Test]
    public void DisposingALeaseTwiceReturnsItOnce()
    {
        var lease = KernelScratch.Rent(1000);
        lease.Dispose();
        lease.Dispose();
        Assert.That(KernelScratch.Stats.InUseBytes, Is.Zero);
        using var a = KernelScratch.Rent(1000);
        using var b = KernelScratch.Rent(1000);
        Assert.That(KernelScratch.Stats.InUseBytes, Is.EqualTo(2 * KernelScratch.Granule), "two distinct blocks, not one handed out twice");
    }

    [Test]
    public void APoolMissFreesScratchIdleForMoreThanIdleOps()
    {
        using var device = NewDevice();
        KernelScratch.Rent(1 << 20).Dispose();
        // IdleOps ops that rent a small block since the large one was returned: not yet more than IdleOps.
        for (int op = 0; op < KernelScratch.IdleOps; op++) KernelScratch.Rent(1000).Dispose();
        Assert.That(KernelScratch.Stats.HeldBytes, Is.EqualTo((4L << 20) + KernelScratch.Granule));
        using (device.Allocate(1 << 20)) // a miss: nothing idle enough to give way
            Assert.That(KernelScratch.Stats.HeldBytes, Is.EqualTo((4L << 20) + KernelScratch.Granule));
        KernelScratch.Rent(1000).Dispose();
        using var t = device.Allocate(3 << 20); // another miss: the 4 MiB block is now idle and goes, the small one stays
        Assert.That(KernelScratch.Stats.HeldBytes, Is.EqualTo(KernelScratch.Granule));
        Assert.That(KernelScratch.Stats.FreeBlocks, Is.EqualTo(1));
    }

    [Test]
    public void ALargeScratchMissFreesIdlePoolBuffersFirst()
    {
        using var device = NewDevice();
        const int large = (int)(KernelScratch.ReclaimFromBytes / sizeof(float));
        device.Allocate(large).Dispose();
        device.Allocate(large / 4).Dispose(); // a miss (the free buffer is more than twice as large): both stay pooled
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(KernelScratch.ReclaimFromBytes * 5 / 4));
        // A small rent maps its own block and leaves the pool alone.
        using (KernelScratch.Rent(1000)) Assert.That(device.Transfers.PooledBytes, Is.EqualTo(KernelScratch.ReclaimFromBytes * 5 / 4));
        using (KernelScratch.Rent(large))
        {
            // The least recently returned buffer (the large one) went, worth the block; the newer one stays.
            Assert.That(device.Transfers.PooledBytes, Is.EqualTo(KernelScratch.ReclaimFromBytes / 4));
            Assert.That(device.NativeBytes, Is.EqualTo(KernelScratch.ReclaimFromBytes / 4));
        }
        // A rent that a free block serves takes nothing from the pool.
        using (KernelScratch.Rent(large)) Assert.That(device.Transfers.PooledBytes, Is.EqualTo(KernelScratch.ReclaimFromBytes / 4));
    }

    [Test]
    public void TrimmingThePoolFreesIdleScratch()
    {
        using var device = NewDevice();
        KernelScratch.Rent(1 << 18).Dispose();
        device.TrimPool();
        Assert.That(KernelScratch.Stats.HeldBytes, Is.Zero);
    }

    [Test]
    public void KernelsHoldNoScratchAfterAnOpAndReuseItInTheNext([Values("Winograd", "Direct512", "Gemm")] string name)
    {
        var algorithm = Enum.Parse<ConvAlgorithm>(name);
        if (algorithm == ConvAlgorithm.Direct512 && !DirectConv.Supports512) Assert.Ignore("no AVX-512 on this CPU");
        // One thread: the same rents in the same order in both ops.
        using var device = new CpuDevice(1, arena: false) { ConvAlgorithm = algorithm };
        var rng = new Random(5);
        int batch = 2, cin = 64, h = 40, w = 40, cout = 48;
        var x = Reference.Random(rng, batch * cin * h * w);
        var wt = Reference.Random(rng, cout * cin * 9, 1f / MathF.Sqrt(cin * 9));
        using var tx = device.Upload(x, batch, cin, h, w);
        using var tw32 = device.Upload(wt, cout, cin, 3, 3);
        using var tw = device.Convert(tw32, DType.F16);
        using var y = device.Allocate(batch, cout, h, w);
        using var y2 = device.Allocate(batch, cout, h, w);
        // Reading the weights back goes through a device buffer: done first, so no pool miss between the two ops
        // frees the idle scratch (as a miss would, by design).
        var expected = Reference.Conv2d(x, tw.ToArray(), null, batch, cin, h, w, cout, 3, 3, 1, 1);
        KernelScratch.ResetPeaks();
        device.Conv2d(tx, tw, null, y, 1, 1);
        var first = KernelScratch.Stats;
        Assert.That(first.InUseBytes, Is.Zero);
        Assert.That(first.PeakInUseBytes, Is.GreaterThan(0), "the convolution rented its packed operands");
        device.Conv2d(tx, tw, null, y2, 1, 1);
        Assert.That(KernelScratch.Stats.Allocations, Is.EqualTo(first.Allocations), "the second op reused the first one's blocks");
        Assert.That(KernelScratch.Stats.InUseBytes, Is.Zero);
        Assert.That(Reference.Compare(y.ToArray(), expected), Is.LessThanOrEqualTo(1e-5));
        Assert.That(y2.ToArray(), Is.EqualTo(y.ToArray()), "reused scratch gives the same result");
    }
}
