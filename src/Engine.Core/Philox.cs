namespace Engine.Core;

/// <summary>
/// Philox4x32-10 counter-based generator (Salmon et al., SC'11) and a Box-Muller transform.
/// Pure integer arithmetic, so the CPU device and every ILGPU backend draw identical bits for the
/// same (key, counter); noise therefore depends only on (seed, sample index, step, element), never
/// on batch size or device.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;

    /// <summary>Ten Philox rounds; returns the four 32-bit outputs for the given counter and key.</summary>
    public static void Round10(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1,
        out uint r0, out uint r1, out uint r2, out uint r3)
    {
        for (int i = 0; i < 10; i++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint hi0 = (uint)(p0 >> 32), lo0 = (uint)p0, hi1 = (uint)(p1 >> 32), lo1 = (uint)p1;
            uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
            c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
            k0 += W0; k1 += W1;
        }
        r0 = c0; r1 = c1; r2 = c2; r3 = c3;
    }

    /// <summary>
    /// Standard normal number for element <paramref name="element"/> of sample <paramref name="sample"/>
    /// at <paramref name="step"/>. One Philox block yields two normals (even/odd element pair).
    /// </summary>
    public static float Normal(ulong seed, uint sample, uint step, uint element)
    {
        uint pair = element >> 1;
        Round10(pair, sample, step, 0x5EED5EEDu, (uint)seed, (uint)(seed >> 32), out uint r0, out uint r1, out _, out _);
        // u1 in (0, 1], u2 in [0, 1): 24-bit mantissas keep the float computation exact.
        float u1 = ((r0 >> 8) + 1) * (1.0f / 16777216.0f);
        float u2 = (r1 >> 8) * (1.0f / 16777216.0f);
        float radius = MathF.Sqrt(-2.0f * MathF.Log(u1));
        float angle = 6.2831853071795864f * u2;
        return (element & 1) == 0 ? radius * MathF.Cos(angle) : radius * MathF.Sin(angle);
    }
}
