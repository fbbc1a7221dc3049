namespace Engine.Core;

/// <summary>
/// The free device buffers a <see cref="Device"/> keeps for reuse, and the policy that bounds them.
/// </summary>
/// <remarks>
/// A request takes the smallest free buffer of its dtype that holds it, up to <see cref="MaxOversize"/> times
/// its length (an exact fit first, so a repeated sequence of requests settles on the same buffers and a
/// steady-state loop allocates nothing); a request of <see cref="LargeBytes"/> or more takes one at most
/// 1/<see cref="LargeSlackDivisor"/> larger, and drops the free buffer up to twice its size that it refused. A request that nothing fits is a miss: before the caller creates a
/// buffer, free buffers smaller than the request are dropped, largest first, until as many bytes as the request
/// are dropped. A phase whose sizes grow (a VAE decode going up in resolution, a UNet's down path, weights widened
/// per call) thus replaces buffers it has outgrown instead of keeping one of every size it ever used, and the
/// memory held stays near the live tensors. With <see cref="LimitBytes"/> set, the pool also drops its least
/// recently returned buffers whenever it holds more than that. Not thread-safe; <see cref="Device"/> locks.
/// </remarks>
public sealed class BufferPool
{
    /// <summary>Largest ratio of a reused buffer's length to the requested length.</summary>
    public const int MaxOversize = 2;

    /// <summary>
    /// Requests of at least this many bytes take a free buffer at most 1/<see cref="LargeSlackDivisor"/> larger than
    /// they are: a large buffer serving half its size would waste as much memory as the request holds.
    /// </summary>
    public const long LargeBytes = 64L << 20;

    /// <summary>A large request takes a free buffer of at most its length plus its length divided by this.</summary>
    public const int LargeSlackDivisor = 8;

    // Free buffers by dtype, each list sorted by length; ties in order of return (the newest last).
    private readonly Dictionary<DType, List<DeviceBuffer>> _free = new();
    // Return order over all dtypes, for the least-recently-returned eviction of the limit.
    private readonly LinkedList<DeviceBuffer> _byAge = new();
    private readonly Dictionary<DeviceBuffer, LinkedListNode<DeviceBuffer>> _ageNodes = new(ReferenceEqualityComparer.Instance);

    /// <summary>Bytes of the free buffers held.</summary>
    public long Bytes { get; private set; }

    /// <summary>Number of free buffers held.</summary>
    public int Count => _ageNodes.Count;

    /// <summary>Most bytes the pool keeps; null for no limit beyond the miss rule.</summary>
    public long? LimitBytes { get; set; }

    /// <summary>The bytes a buffer occupies.</summary>
    public static long BytesOf(DeviceBuffer buffer) => buffer.Length * buffer.DType.Size();

    /// <summary>
    /// Takes the best-fitting free buffer for <paramref name="length"/> elements of <paramref name="dtype"/>,
    /// or returns null after dropping into <paramref name="dropped"/> what the miss rule releases.
    /// </summary>
    public DeviceBuffer? Take(DType dtype, long length, List<DeviceBuffer> dropped)
    {
        length = Math.Max(1, length);
        bool large = length * dtype.Size() >= LargeBytes;
        if (_free.TryGetValue(dtype, out var list))
        {
            int i = FirstAtLeast(list, length);
            if (i < list.Count && list[i].Length <= (large ? length + length / LargeSlackDivisor : length * MaxOversize))
            {
                // The newest of that length: its memory is the most likely to be in cache.
                i = FirstAtLeast(list, list[i].Length + 1) - 1;
                var buffer = list[i];
                Remove(list, i);
                return buffer;
            }
            // A large request refused the buffer it could have taken up to twice its size: that buffer goes, so the
            // exact one created in its place takes its memory instead of sitting beside it.
            if (large && i < list.Count && list[i].Length <= length * MaxOversize)
            {
                dropped.Add(Drop(list[i]));
                return null;
            }
        }
        DropSmaller(length * dtype.Size(), dropped);
        return null;
    }

    /// <summary>Keeps <paramref name="buffer"/> for reuse; buffers over <see cref="LimitBytes"/> go to <paramref name="dropped"/>.</summary>
    public void Return(DeviceBuffer buffer, List<DeviceBuffer> dropped)
    {
        if (!_free.TryGetValue(buffer.DType, out var list)) _free[buffer.DType] = list = new List<DeviceBuffer>();
        // After every buffer of the same length, so equal lengths are taken newest first (as a stack).
        int i = FirstAtLeast(list, buffer.Length + 1);
        list.Insert(i, buffer);
        _ageNodes[buffer] = _byAge.AddLast(buffer);
        Bytes += BytesOf(buffer);
        ApplyLimit(dropped);
    }

    /// <summary>Drops the least recently returned buffers into <paramref name="dropped"/> while the pool holds more than <see cref="LimitBytes"/>.</summary>
    public void ApplyLimit(List<DeviceBuffer> dropped)
    {
        if (LimitBytes is long limit)
            while (Bytes > limit && _byAge.First is { } oldest)
                dropped.Add(Drop(oldest.Value));
    }

    /// <summary>
    /// Drops the least recently returned free buffers into <paramref name="dropped"/> until at least <paramref name="bytes"/>
    /// are dropped or none is left; returns the bytes dropped.
    /// </summary>
    public long Release(long bytes, List<DeviceBuffer> dropped)
    {
        long released = 0;
        while (released < bytes && _byAge.First is { } oldest)
        {
            released += BytesOf(oldest.Value);
            dropped.Add(Drop(oldest.Value));
        }
        return released;
    }

    /// <summary>Moves every free buffer to <paramref name="dropped"/>.</summary>
    public void Clear(List<DeviceBuffer> dropped)
    {
        dropped.AddRange(_byAge);
        _free.Clear();
        _byAge.Clear();
        _ageNodes.Clear();
        Bytes = 0;
    }

    /// <summary>Free buffers by dtype and length with their count, for reports.</summary>
    public IReadOnlyList<(DType DType, long Length, int Count)> Contents() =>
        _free.SelectMany(kv => kv.Value.GroupBy(b => b.Length).Select(g => (DType: kv.Key, Length: g.Key, Count: g.Count())))
            .OrderByDescending(e => e.Length * e.DType.Size()).ToList();

    private void DropSmaller(long bytes, List<DeviceBuffer> dropped)
    {
        long released = 0;
        while (released < bytes)
        {
            DeviceBuffer? largest = null;
            foreach (var list in _free.Values)
                for (int i = list.Count - 1; i >= 0; i--)
                    if (BytesOf(list[i]) < bytes)
                    {
                        if (largest is null || BytesOf(list[i]) > BytesOf(largest)) largest = list[i];
                        break;
                    }
            if (largest is null) return;
            released += BytesOf(largest);
            dropped.Add(Drop(largest));
        }
    }

    private DeviceBuffer Drop(DeviceBuffer buffer)
    {
        var list = _free[buffer.DType];
        Remove(list, list.LastIndexOf(buffer));
        return buffer;
    }

    private void Remove(List<DeviceBuffer> list, int index)
    {
        var buffer = list[index];
        list.RemoveAt(index);
        _byAge.Remove(_ageNodes[buffer]);
        _ageNodes.Remove(buffer);
        Bytes -= BytesOf(buffer);
    }

    private static int FirstAtLeast(List<DeviceBuffer> list, long length)
    {
        int lo = 0, hi = list.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (list[mid].Length < length) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }
}
