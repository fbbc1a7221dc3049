using Engine.Core;

namespace Engine.Sampling.Guidance;

/// <summary>
/// Applies the CADS corruption of <see cref="CadsOptions"/> to conditioning rows on the device. The
/// noise n is Philox keyed by (seed, sample index, call), so every block of a batched forward that
/// belongs to the same sample (conditional and perturbed rows) sees the same corrupted condition, and
/// results do not depend on the batch. Unconditional rows are never corrupted. Buffers are allocated
/// on first use and reused.
/// </summary>
public sealed class CadsNoise : IEmbeddingTransform, IDisposable
{
    /// <summary>
    /// XORed into <see cref="CadsOptions.Seed"/>: n of call k for sample i is <see cref="Device.RandomNormal"/>
    /// keyed (Seed ^ SeedMix, i, k), so the condition noise differs from sampler noise drawn with the same user seed.
    /// </summary>
    public const ulong SeedMix = 0xC4D5_0000_9E37_79B9UL;
    private readonly CadsOptions _options;
    private readonly int _batch;
    private readonly RowStatistics _stats = new();
    private int[] _blocks = [0];
    private int _call;
    private double _gamma = 1;
    private Tensor? _noise, _work, _mean, _std;

    /// <summary>Creates the corruption for batches of <paramref name="batch"/> samples.</summary>
    public CadsNoise(CadsOptions options, int batch)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (batch < 1) throw new ArgumentOutOfRangeException(nameof(batch), batch, "CADS batch must be >= 1.");
        _options = options; _batch = batch;
    }

    /// <summary>gamma of the current call.</summary>
    public double Gamma => _gamma;

    /// <summary>
    /// Sets the call (t = 1 - call / calls) and the first rows of the conditional blocks of B rows that
    /// <see cref="Apply"/> corrupts.
    /// </summary>
    public void Configure(int call, int calls, ReadOnlySpan<int> conditionalBlockStarts)
    {
        _call = call;
        _gamma = _options.Gamma(1 - (double)call / calls);
        if (_blocks.Length != conditionalBlockStarts.Length) _blocks = new int[conditionalBlockStarts.Length];
        conditionalBlockStarts.CopyTo(_blocks);
    }

    /// <summary>True when the current call leaves the condition untouched (gamma 1, or noise scale 0: no noise is added).</summary>
    public bool IsIdentity => _gamma == 1 || _options.NoiseScale == 0;

    /// <inheritdoc />
    public void Apply(Tensor embedding)
    {
        if (IsIdentity) return;
        foreach (int start in _blocks)
        {
            var rows = embedding.Slice(start, _batch);
            var flat = rows.Reshape(_batch, -1);
            Corrupt(flat, flat);
        }
    }

    /// <summary>
    /// Writes the corrupted condition of <paramref name="clean"/> [B, E] into <paramref name="output"/>
    /// [B, E] (may alias): a copy when <see cref="IsIdentity"/>.
    /// </summary>
    public void Corrupt(Tensor clean, Tensor output)
    {
        var d = clean.Device;
        if (IsIdentity) { if (!ReferenceEquals(clean, output)) d.Copy(clean, output); return; }
        int e = clean.Dim(-1);
        var noise = Buffer(ref _noise, d, _batch, e);
        var work = Buffer(ref _work, d, _batch, e);
        d.RandomNormal(noise, _options.Seed ^ SeedMix, _options.FirstSampleIndex, _call);
        double psi = _options.Psi;
        if (psi > 0)
        {
            var mean = Buffer(ref _mean, d, _batch, 1);
            var std = Buffer(ref _std, d, _batch, 1);
            _stats.Mean(clean, mean);
            _stats.Std(clean, std);
            d.LinearCombination(work, [clean, noise], [(float)Math.Sqrt(_gamma), (float)(_options.NoiseScale * Math.Sqrt(1 - _gamma))]);
            // Rescaled: standardize y' per row, then restore y's std and mean; noise holds it.
            RowStatistics.Standardize(work, noise);
            d.Mul(noise, std, noise);
            d.Add(noise, mean, noise);
            d.LinearCombination(output, [noise, work], [(float)psi, (float)(1 - psi)]);
        }
        else
            d.LinearCombination(output, [clean, noise], [(float)Math.Sqrt(_gamma), (float)(_options.NoiseScale * Math.Sqrt(1 - _gamma))]);
    }

    private static Tensor Buffer(ref Tensor? t, Device d, int rows, int cols)
    {
        if (t is null || t.Dim(0) != rows || t.Dim(1) != cols || !ReferenceEquals(t.Device, d)) { t?.Dispose(); t = d.Allocate(rows, cols); }
        return t;
    }

    /// <summary>Releases the buffers.</summary>
    public void Dispose()
    {
        _noise?.Dispose(); _work?.Dispose(); _mean?.Dispose(); _std?.Dispose(); _stats.Dispose();
        _noise = _work = _mean = _std = null;
    }
}
