namespace Engine.Sampling.Rng;

/// <summary>
/// PyTorch's CPU generator, <c>torch.Generator("cpu").manual_seed(seed)</c>, reproduced draw for draw:
/// MT19937 seeded with the seed mod 2^32, PyTorch's uniform conversions, and both <c>torch.randn</c>
/// algorithms (double-precision Box-Muller with a one-value cache under 16 values, float32 blocks of 16
/// with a tail re-draw from 16 values on). Every method consumes the stream exactly as the matching torch
/// call on one contiguous tensor does, so a sequence of calls here equals the same sequence in PyTorch.
/// </summary>
public sealed class TorchCpuGenerator
{
    private const int Block = 16;
    private readonly Mt19937 _engine;
    private double? _normalCache;

    /// <summary>A generator seeded as <c>manual_seed(seed)</c>, drawing blocks with the given kernel's arithmetic.</summary>
    public TorchCpuGenerator(ulong seed, TorchNormalKernel kernel = TorchNormalKernel.Avx2)
    {
        Kernel = kernel;
        _engine = new Mt19937((uint)seed);
        InitialSeed = seed;
    }

    /// <summary>The seed as <c>initial_seed()</c> reports it (the full 64 bits; only the low 32 seed the engine).</summary>
    public ulong InitialSeed { get; private set; }

    /// <summary>The kernel whose float32 block arithmetic is reproduced.</summary>
    public TorchNormalKernel Kernel { get; }

    /// <summary>Re-seeds like <c>manual_seed</c>, which also empties the normal-value cache.</summary>
    public void ManualSeed(ulong seed)
    {
        _engine.Seed((uint)seed);
        InitialSeed = seed;
        _normalCache = null;
    }

    /// <summary>The next raw 32-bit engine output.</summary>
    public uint Random32() => _engine.Next();

    /// <summary>Two raw outputs, the first as the high word (PyTorch's <c>random64</c>).</summary>
    public ulong Random64()
    {
        ulong hi = _engine.Next();
        return (hi << 32) | _engine.Next();
    }

    /// <summary><c>torch.rand</c> in float32: the low 24 bits of one raw output per value, times 2^-24.</summary>
    public void Rand(Span<float> output)
    {
        for (int i = 0; i < output.Length; i++) output[i] = NextUniformFloat();
    }

    /// <summary><c>torch.rand(dtype=float64)</c>: the low 53 bits of <see cref="Random64"/> per value, times 2^-53.</summary>
    public void Rand(Span<double> output)
    {
        for (int i = 0; i < output.Length; i++) output[i] = NextUniformDouble();
    }

    /// <summary><c>torch.randn</c> in float32 filling <paramref name="output"/> (any shape, row-major).</summary>
    public void Randn(Span<float> output)
    {
        int n = output.Length;
        if (n < Block)
        {
            for (int i = 0; i < n; i++) output[i] = (float)NextDoubleNormal();
            return;
        }
        for (int i = 0; i < n; i++) output[i] = NextUniformFloat();
        for (int i = 0; i + Block <= n; i += Block) BoxMuller16(output.Slice(i, Block));
        if (n % Block != 0)
        {
            // PyTorch re-draws 16 fresh uniforms over the last 16 slots (overwriting finished values too).
            var tail = output[(n - Block)..];
            for (int i = 0; i < Block; i++) tail[i] = NextUniformFloat();
            BoxMuller16(tail);
        }
    }

    /// <summary>
    /// <c>torch.randn(dtype=float16)</c>: half-precision uniforms and arithmetic, a different stream from
    /// float32 for the same seed. Values are returned as the exact float of each half.
    /// </summary>
    public void RandnHalf(Span<float> output)
    {
        int n = output.Length;
        if (n < Block)
        {
            for (int i = 0; i < n; i++) output[i] = (float)(Half)(float)NextDoubleNormal();
            return;
        }
        for (int i = 0; i < n; i++) output[i] = NextUniformHalf();
        for (int i = 0; i + Block <= n; i += Block) HalfBoxMuller16(output.Slice(i, Block));
        if (n % Block != 0)
        {
            var tail = output[(n - Block)..];
            for (int i = 0; i < Block; i++) tail[i] = NextUniformHalf();
            HalfBoxMuller16(tail);
        }
    }

    private float NextUniformFloat() => (_engine.Next() & 0xFFFFFFu) * (1f / (1 << 24));

    private float NextUniformHalf() => (float)(Half)((_engine.Next() & 0x7FFu) * (1f / (1 << 11)));

    private double NextUniformDouble() => (Random64() & ((1UL << 53) - 1)) * (1.0 / (1UL << 53));

    // The small path: one Box-Muller pair in double, the sine kept for the next value of any later call.
    private double NextDoubleNormal()
    {
        if (_normalCache is { } cached)
        {
            _normalCache = null;
            return cached;
        }
        double u1 = NextUniformDouble(), u2 = NextUniformDouble();
        double r = Math.Sqrt(-2.0 * Math.Log(1.0 - u2));
        double theta = 2.0 * Math.PI * u1;
        _normalCache = r * Math.Sin(theta);
        return r * Math.Cos(theta);
    }

    // Output j takes its radius from uniform j and its angle from uniform j + 8; j < 8 are cosines, the rest sines.
    private void BoxMuller16(Span<float> d)
    {
        for (int j = 0; j < 8; j++)
        {
            float u1 = 1f - d[j], u2 = d[j + 8];
            if (Kernel == TorchNormalKernel.Avx2)
            {
                float r = MathF.Sqrt(-2f * CephesFloat.Log(u1));
                var (sin, cos) = CephesFloat.SinCos(6.2831855f * u2);
                d[j] = r * cos + 0f; // "* std + mean" turns -0 into +0
                d[j + 8] = r * sin + 0f;
            }
            else
            {
                float r = MathF.Sqrt(-2f * MathF.Log(u1));
                float theta = (float)(2.0 * Math.PI * u2);
                d[j] = r * MathF.Cos(theta) + 0f;
                d[j + 8] = r * MathF.Sin(theta) + 0f;
            }
        }
    }

    // The float16 block: every intermediate PyTorch stores as half is rounded to half here.
    private static void HalfBoxMuller16(Span<float> d)
    {
        for (int j = 0; j < 8; j++)
        {
            float u1 = (float)(Half)(1f - d[j]), u2 = d[j + 8];
            float r = (float)(Half)MathF.Sqrt(-2f * MathF.Log(u1));
            float theta = (float)(Half)(float)(2.0 * Math.PI * u2);
            d[j] = (float)(Half)(r * MathF.Cos(theta) + 0f);
            d[j + 8] = (float)(Half)(r * MathF.Sin(theta) + 0f);
        }
    }
}
