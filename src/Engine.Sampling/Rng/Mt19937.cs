namespace Engine.Sampling.Rng;

/// <summary>
/// The 32-bit Mersenne Twister (MT19937) with the standard initialisation, twist and tempering:
/// the engine behind PyTorch's CPU generator.
/// </summary>
public sealed class Mt19937
{
    private const int N = 624, M = 397;
    private const uint MatrixA = 0x9908b0df, UpperMask = 0x80000000, LowerMask = 0x7fffffff;
    private readonly uint[] _state = new uint[N];
    private int _next;

    /// <summary>Seeds the engine with a 32-bit seed (init_genrand).</summary>
    public Mt19937(uint seed) => Seed(seed);

    /// <summary>Re-seeds: state[0] = seed, state[i] = 1812433253 (state[i-1] ^ (state[i-1] >> 30)) + i.</summary>
    public void Seed(uint seed)
    {
        _state[0] = seed;
        for (int i = 1; i < N; i++) _state[i] = 1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30)) + (uint)i;
        _next = N; // the whole state is regenerated before the first output
    }

    /// <summary>The next tempered 32-bit output.</summary>
    public uint Next()
    {
        if (_next >= N) Twist();
        uint y = _state[_next++];
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >> 18;
        return y;
    }

    private void Twist()
    {
        for (int i = 0; i < N; i++)
        {
            uint y = (_state[i] & UpperMask) | (_state[(i + 1) % N] & LowerMask);
            _state[i] = _state[(i + M) % N] ^ (y >> 1) ^ ((y & 1) != 0 ? MatrixA : 0u);
        }
        _next = 0;
    }
}
