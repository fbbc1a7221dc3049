using Engine.Core;
using Engine.Cpu;

namespace Engine.Core.Tests;

/// <summary>
/// The CPU memory arena (<see cref="NativeArena"/>): best fit with splitting, coalescing of freed neighbours, the top
/// falling when its block is freed while the pages stay held until a trim, a trim zeroing free pages, refusals where
/// the reservation is full, no two live blocks overlapping under random use; and the CPU device on top of it: large
/// buffers unpooled and freed at once, small ones pooled, scratch served by the arena, and a repeated pass holding no
/// more memory after its first run.
/// </summary>
public unsafe class NativeArenaTests
{
    private const long KiB = 1024, MiB = 1 << 20;

    private static NativeArena NewArena(long bytes = 64 * MiB)
    {
        if (!OperatingSystem.IsLinux()) Assert.Ignore("the arena is Linux-only");
        return NativeArena.TryCreate(bytes, bytes) ?? throw new AssertionException($"could not reserve {bytes} bytes");
    }

    private static long Offset(NativeArena arena, void* first, void* p) => (byte*)p - (byte*)first;

    [Test]
    public void BestFitTakesTheSmallestHoleAndSplitsIt()
    {
        using var arena = NewArena();
        var a = arena.TryAllocate(MiB);
        var b = arena.TryAllocate(3 * MiB);
        var c = arena.TryAllocate(MiB);
        var d = arena.TryAllocate(2 * MiB);
        var e = arena.TryAllocate(MiB);
        arena.Free(b); // hole of 3 MiB at 1 MiB
        arena.Free(d); // hole of 2 MiB at 5 MiB
        var f = arena.TryAllocate(MiB + 1);
        Assert.That(Offset(arena, a, f), Is.EqualTo(5 * MiB), "the 2 MiB hole is the smallest that fits");
        var g = arena.TryAllocate(MiB);
        Assert.That(Offset(arena, a, g), Is.EqualTo(MiB), "the rest of the 2 MiB hole is a page short: the 3 MiB hole, split");
        var h = arena.TryAllocate(2 * MiB - 8 * KiB);
        Assert.That(Offset(arena, a, h), Is.EqualTo(2 * MiB), "what the split left, not the smaller rest of the first hole");
        var i = arena.TryAllocate(MiB - 8 * KiB);
        Assert.That(Offset(arena, a, i), Is.EqualTo(6 * MiB + NativeArena.Granule), "the rest of the first hole");
        Assert.That(arena.InUseBytes, Is.EqualTo(3 * MiB + (MiB + NativeArena.Granule) + MiB + (2 * MiB - 8 * KiB) + (MiB - 8 * KiB)));
        foreach (var p in new[] { a, c, e, f, g, h, i }) arena.Free((void*)p);
        Assert.That(arena.InUseBytes, Is.Zero);
        Assert.That(arena.FreeRanges, Is.Zero, "everything merged and the top fell to the start");
    }

    [Test]
    public void FreedNeighboursMergeIntoOneRange()
    {
        using var arena = NewArena();
        var blocks = Enumerable.Range(0, 5).Select(_ => (nint)arena.TryAllocate(MiB)).ToArray();
        arena.Free((void*)blocks[1]);
        arena.Free((void*)blocks[3]);
        Assert.That(arena.FreeRanges, Is.EqualTo(2));
        arena.Free((void*)blocks[2]); // joins both
        Assert.That(arena.FreeRanges, Is.EqualTo(1));
        var big = arena.TryAllocate(3 * MiB);
        Assert.That((nint)big, Is.EqualTo(blocks[1]), "the merged 3 MiB serves a request no single block could");
        arena.Free(big);
        arena.Free((void*)blocks[0]);
        arena.Free((void*)blocks[4]);
    }

    [Test]
    public void TheTopFallsWhenItsBlockIsFreedAndItsPagesStayHeldUntilATrim()
    {
        using var arena = NewArena();
        var a = arena.TryAllocate(MiB);
        var b = arena.TryAllocate(4 * MiB);
        Assert.That(arena.HeldBytes, Is.EqualTo(5 * MiB));
        arena.Free(b);
        Assert.That(arena.HeldBytes, Is.EqualTo(5 * MiB), "freed pages stay resident for the next request");
        var c = arena.TryAllocate(2 * MiB);
        Assert.That((nint)c, Is.EqualTo((nint)b), "the top fell: the next block starts where the freed one did");
        Assert.That(arena.HeldBytes, Is.EqualTo(5 * MiB), "within the held pages: no growth");
        arena.Free(a); // a hole below c
        Assert.That(arena.Trim(), Is.EqualTo(MiB + 2 * MiB), "the hole and the pages above the top");
        Assert.That(arena.HeldBytes, Is.EqualTo(3 * MiB));
        arena.Free(c);
    }

    [Test]
    public void ATrimmedRangeReadsAsZeros()
    {
        using var arena = NewArena();
        var keep = (float*)arena.TryAllocate(MiB);
        var p = (float*)arena.TryAllocate(MiB);
        var above = arena.TryAllocate(MiB);
        new Span<float>(p, (int)(MiB / 4)).Fill(7f);
        new Span<float>(keep, (int)(MiB / 4)).Fill(3f);
        arena.Free(p);
        arena.Trim();
        var again = (float*)arena.TryAllocate(MiB);
        Assert.That((nint)again, Is.EqualTo((nint)p));
        Assert.That(new Span<float>(again, (int)(MiB / 4)).ToArray().All(v => v == 0f), Is.True, "its pages went back to the system");
        Assert.That(new Span<float>(keep, (int)(MiB / 4)).ToArray().All(v => v == 3f), Is.True, "a block in use keeps its contents");
        arena.Free(keep);
        arena.Free(again);
        arena.Free(above);
    }

    [Test]
    public void ARequestBeyondTheReservationIsRefusedAndAWrongFreeThrows()
    {
        using var arena = NewArena(64 * MiB);
        var a = arena.TryAllocate(48 * MiB);
        Assert.That((long)arena.TryAllocate(32 * MiB), Is.Zero, "16 MiB left");
        var b = arena.TryAllocate(16 * MiB);
        Assert.That((long)b, Is.Not.Zero, "exactly what is left");
        arena.Free(b);
        Assert.Throws<InvalidOperationException>(() => arena.Free(b), "freed twice");
        Assert.Throws<InvalidOperationException>(() => arena.Free((byte*)a + 4096), "not a block's start");
        arena.Free(a);
        Assert.That(arena.InUseBytes, Is.Zero);
    }

    [Test]
    public void RandomUseNeverOverlapsLiveBlocksAndKeepsTheirContents()
    {
        using var arena = NewArena(256 * MiB);
        var random = new Random(11);
        var live = new List<(nint Pointer, long Bytes, byte Mark)>();
        for (int op = 0; op < 3000; op++)
        {
            if (live.Count > 0 && random.Next(2) == 0)
            {
                int k = random.Next(live.Count);
                var (p, bytes, mark) = live[k];
                Assert.That(new Span<byte>((void*)p, (int)bytes).IndexOfAnyExcept(mark), Is.EqualTo(-1), $"op {op}: a live block was overwritten");
                arena.Free((void*)p);
                live.RemoveAt(k);
            }
            else
            {
                long bytes = 1 + random.Next(1 << random.Next(12, 22));
                var p = (byte*)arena.TryAllocate(bytes);
                Assert.That((long)p, Is.Not.Zero);
                Assert.That((long)p % NativeArena.Granule, Is.Zero, "page aligned");
                byte mark = (byte)(1 + op % 250);
                new Span<byte>(p, (int)bytes).Fill(mark);
                live.Add(((nint)p, bytes, mark));
            }
            Assert.That(arena.InUseBytes, Is.EqualTo(live.Sum(b => (b.Bytes + NativeArena.Granule - 1) / NativeArena.Granule * NativeArena.Granule)));
        }
        var sorted = live.OrderBy(b => b.Pointer).ToList();
        for (int i = 1; i < sorted.Count; i++)
            Assert.That((long)sorted[i].Pointer, Is.GreaterThanOrEqualTo((long)sorted[i - 1].Pointer + sorted[i - 1].Bytes), "blocks overlap");
        foreach (var b in live) arena.Free((void*)b.Pointer);
        Assert.That(arena.FreeRanges, Is.Zero);
    }

    [Test]
    public void LargeCpuBuffersAreUnpooledArenaBlocksAndSmallOnesArePooled()
    {
        if (CpuMemory.Arena is null) Assert.Ignore("no arena in this process (not Linux, or ENGINE_CPU_ARENA=0)");
        using var device = new CpuDevice(1);
        Assert.That(device.UsesArena, Is.True);
        long inUse = CpuMemory.Stats.InUseBytes;
        var large = device.Allocate(1 << 18); // 1 MiB
        Assert.That(CpuMemory.Stats.InUseBytes - inUse, Is.EqualTo(MiB));
        device.Fill(large, 2f);
        Assert.That(large.ToArray().All(v => v == 2f), Is.True);
        large.Dispose();
        Assert.That(CpuMemory.Stats.InUseBytes, Is.EqualTo(inUse), "freed to the arena at once");
        Assert.That(device.Transfers.PooledBytes, Is.Zero, "not pooled");
        Assert.That(device.NativeBytes, Is.Zero);
        device.Allocate(1000).Dispose();
        Assert.That(device.Transfers.PooledBytes, Is.EqualTo(4000), "a small buffer is pooled as before");
        using var pooledDevice = new CpuDevice(1, arena: false);
        Assert.That(pooledDevice.UsesArena, Is.False);
        pooledDevice.Allocate(1 << 18).Dispose();
        Assert.That(pooledDevice.Transfers.PooledBytes, Is.EqualTo(MiB), "without the arena, large buffers are pooled");
        Assert.That(CpuMemory.Stats.InUseBytes, Is.EqualTo(inUse));
    }

    [Test]
    public void ScratchRentsAreArenaBlocksFreedOnReturn()
    {
        if (CpuMemory.Arena is null) Assert.Ignore("no arena in this process (not Linux, or ENGINE_CPU_ARENA=0)");
        long inUse = CpuMemory.Stats.InUseBytes, rents = KernelScratch.Stats.ArenaRents;
        using (var lease = KernelScratch.Rent(1 << 18))
        {
            Assert.That(CpuMemory.InArena(lease.Pointer), Is.True);
            Assert.That(CpuMemory.Stats.InUseBytes - inUse, Is.EqualTo(MiB));
        }
        Assert.That(CpuMemory.Stats.InUseBytes, Is.EqualTo(inUse), "returned to the arena, not kept");
        Assert.That(KernelScratch.Stats.ArenaRents, Is.EqualTo(rents + 1));
        using var small = KernelScratch.Rent(1000);
        Assert.That(CpuMemory.InArena(small.Pointer), Is.True, "scratch blocks are at least 64 KiB: every one is the arena's");
    }

    [Test]
    public void ARepeatedConvolutionPassHoldsNoMoreAfterItsFirstRun()
    {
        if (CpuMemory.Arena is null) Assert.Ignore("no arena in this process (not Linux, or ENGINE_CPU_ARENA=0)");
        using var device = new CpuDevice(1);
        var rng = new Random(3);
        int batch = 2, cin = 32, h = 24, w = 24, cout = 48;
        using var x = device.Upload(Reference.Random(rng, batch * cin * h * w), batch, cin, h, w);
        using var wt = device.Upload(Reference.Random(rng, cout * cin * 9, 0.05f), cout, cin, 3, 3);
        float[] Pass()
        {
            using var y = device.Allocate(batch, cout, h, w);
            device.Conv2d(x, wt, null, y, 1, 1);
            using var z = device.Allocate(batch, cout, h, w);
            device.Activate(y, z, Activation.SiLU);
            return z.ToArray();
        }
        var first = Pass();
        long held = CpuMemory.Stats.HeldBytes, inUse = CpuMemory.Stats.InUseBytes;
        for (int i = 0; i < 3; i++) Assert.That(Pass(), Is.EqualTo(first));
        Assert.That(CpuMemory.Stats.HeldBytes, Is.EqualTo(held), "the same requests fit in the pages the first pass left");
        Assert.That(CpuMemory.Stats.InUseBytes, Is.EqualTo(inUse));
    }
}
