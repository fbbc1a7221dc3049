using System.Runtime.InteropServices;
using Engine.Core;

namespace Engine.Sampling;

/// <summary>
/// Standard-normal draws recorded elsewhere (diffusers' <c>randn_tensor</c> calls inside the loop, stored as
/// <c>step_noise</c> [K, N, ...]), replayed in call order: the k-th <see cref="Fill"/> writes draw k. A run
/// made in batches reads each batch's rows of every draw through its own view (<see cref="ForRows"/>).
/// </summary>
public sealed class RecordedNoise : INoiseSource
{
    private readonly ReadOnlyMemory<float> _values;
    private readonly int _drawLength, _firstRow;
    private int _next;

    /// <summary>One host array per draw, in the order the sampler makes them, each covering the whole sample.</summary>
    public RecordedNoise(IEnumerable<float[]> draws)
    {
        ArgumentNullException.ThrowIfNull(draws);
        var all = draws.ToArray();
        if (all.Length > 0 && all.Any(d => d.Length != all[0].Length)) throw new ArgumentException("Recorded draws must all have the same length.", nameof(draws));
        _values = all.SelectMany(d => d).ToArray();
        _drawLength = all.Length == 0 ? 0 : all[0].Length;
        Count = all.Length;
    }

    /// <summary>
    /// <paramref name="count"/> draws of <paramref name="drawLength"/> values each, stored one after the other
    /// (a <c>step_noise</c> tensor [count, N, ...] flattened); a run reading rows from <paramref name="firstRow"/> on.
    /// </summary>
    public RecordedNoise(ReadOnlyMemory<float> values, int count, int drawLength, int firstRow = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(firstRow);
        if (count > 0 && drawLength < 1) throw new ArgumentOutOfRangeException(nameof(drawLength), drawLength, "A draw needs at least one value.");
        if ((long)count * drawLength != values.Length) throw new ArgumentException($"{values.Length} values are not {count} draws of {drawLength}.", nameof(values));
        _values = values;
        Count = count;
        _drawLength = drawLength;
        _firstRow = firstRow;
    }

    /// <summary>Number of recorded draws.</summary>
    public int Count { get; }

    /// <summary>Draws handed out so far.</summary>
    public int Used => _next;

    /// <summary>A fresh replay of the same draws (from draw 0) for the batch whose first row is <paramref name="firstRow"/>.</summary>
    public RecordedNoise ForRows(int firstRow) => new(_values, Count, _drawLength, firstRow);

    /// <summary>
    /// Throws <see cref="ArgumentException"/> naming <paramref name="source"/> when fewer than
    /// <paramref name="needed"/> draws are recorded (checked before sampling starts).
    /// </summary>
    public void Require(int needed, string source, string sampler)
    {
        if (Count < needed)
            throw new ArgumentException($"{source}: step_noise holds {Count} draw{(Count == 1 ? "" : "s")}; {sampler} makes {needed} in this run (diffusers' draws, including those multiplied by zero).");
    }

    /// <inheritdoc />
    public void Fill(Tensor output, int draw)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (_next >= Count) throw new InvalidOperationException($"Recorded noise has {Count} draws; the sampler asked for draw {_next + 1}.");
        int rows = output.Dim(0);
        long rowLength = output.Length / rows;
        if (_drawLength % rowLength != 0 || _firstRow + rows > _drawLength / rowLength)
            throw new ArgumentException($"Recorded draw {_next} has {_drawLength} values; rows {_firstRow}..{_firstRow + rows - 1} of {output} do not fit in it.");
        var span = _values.Span.Slice((int)(_next * (long)_drawLength + _firstRow * rowLength), (int)output.Length);
        output.Device.CopyFromHost(MemoryMarshal.AsBytes(span), output);
        _next++;
    }
}
