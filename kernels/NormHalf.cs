using Engine.Core;
using ILGPU;

namespace Engine.Kernels;

/// <summary>How a 16-bit activation format widens to and rounds from float32.</summary>
public interface IHalfFormat
{
    /// <summary>The value of <paramref name="bits"/> (exact).</summary>
    float Decode(ushort bits);

    /// <summary><paramref name="value"/> rounded to nearest even.</summary>
    ushort Encode(float value);
}

/// <summary>IEEE binary16 (integer conversions: the same bits on every backend).</summary>
public struct F16Format : IHalfFormat
{
    /// <inheritdoc />
    public readonly float Decode(ushort bits) => ScalarMath.FromHalfBits(bits);

    /// <inheritdoc />
    public readonly ushort Encode(float value) => ScalarMath.ToHalfBits(value);
}

/// <summary>bfloat16, the high half of a float32.</summary>
public struct BF16Format : IHalfFormat
{
    /// <inheritdoc />
    public readonly float Decode(ushort bits) => ScalarMath.FromBFloat16(bits);

    /// <inheritdoc />
    public readonly ushort Encode(float value) => ScalarMath.ToBFloat16(value);
}

/// <summary>
/// A half-precision tensor as the norm kernels see it: its whole buffer as 16-bit elements and as 64-bit
/// quads of four (a 64-bit buffer base is 8-byte aligned), and the tensor's first element in it. Element i
/// of the tensor is <c>Elements[Base + i]</c>; four from i load as one quad where <c>Base + i</c> is a
/// multiple of 4.
/// </summary>
public struct HalfTensor
{
    /// <summary>The buffer's 16-bit elements.</summary>
    public ArrayView<ushort> Elements;
    /// <summary>The same buffer as 64-bit words (its length rounded down).</summary>
    public ArrayView<ulong> Quads;
    /// <summary>The tensor's first element in the buffer.</summary>
    public long Base;

    /// <summary>Whether the four elements from <paramref name="i"/> form one quad.</summary>
    public readonly bool QuadAligned(long i) => ((Base + i) & 3) == 0;

    /// <summary>Element <paramref name="i"/> widened.</summary>
    public readonly float Read<TF>(long i) where TF : struct, IHalfFormat => default(TF).Decode(Elements[Base + i]);

    /// <summary>Stores <paramref name="value"/> rounded at element <paramref name="i"/>.</summary>
    public readonly void Write<TF>(long i, float value) where TF : struct, IHalfFormat => Elements[Base + i] = default(TF).Encode(value);

    /// <summary>The quad of elements i .. i + 3 (i quad-aligned), element i in the low 16 bits.</summary>
    public readonly ulong ReadQuad(long i) => Quads[(Base + i) >> 2];

    /// <summary>Stores the quad of elements i .. i + 3 (i quad-aligned).</summary>
    public readonly void WriteQuad(long i, ulong quad) => Quads[(Base + i) >> 2] = quad;

    /// <summary>Element <paramref name="j"/> (0-3) of a quad, widened.</summary>
    public static float Lane<TF>(ulong quad, int j) where TF : struct, IHalfFormat => default(TF).Decode((ushort)(quad >> (16 * j)));
}

/// <summary>The element-wise last pass of a norm: the output value of element i (index within the normalised block) from its input.</summary>
public interface INormApply
{
    /// <summary>y of element <paramref name="i"/> from x.</summary>
    float Apply(int i, float x);
}

/// <summary>GroupNorm's affine (+ SiLU) with the group's statistics, exactly as <see cref="NormKernels.GroupNorm"/> computes it.</summary>
public struct GroupNormAffine : INormApply
{
    /// <summary>Per-channel scale and shift (read when the params say so).</summary>
    public ArrayView<float> Gamma, Beta;
    /// <summary>The kernel's arguments.</summary>
    public GroupNormParams P;
    /// <summary>The group's mean and 1 / sqrt(var + eps).</summary>
    public float Mean, Rstd;
    /// <summary>First channel of the group.</summary>
    public int Channel0;

    /// <inheritdoc />
    public readonly float Apply(int i, float x)
    {
        int ch = Channel0 + i / P.Spatial;
        float scale = Rstd * (P.HasGamma != 0 ? Gamma[ch] : 1f);
        float shift = (P.HasBeta != 0 ? Beta[ch] : 0f) - Mean * scale;
        float y = x * scale + shift;
        return P.Silu != 0 ? ScalarMath.Silu(y) : y;
    }
}

/// <summary>LayerNorm's normalisation and affine, exactly as <see cref="NormKernels.LayerNorm"/> computes it.</summary>
public struct LayerNormAffine : INormApply
{
    /// <summary>Per-feature scale and shift.</summary>
    public ArrayView<float> Gamma, Beta;
    /// <summary>The row's mean and 1 / sqrt(var + eps).</summary>
    public float Mean, Rstd;
    /// <summary>1 when gamma / beta hold d values.</summary>
    public int HasGamma, HasBeta;

    /// <inheritdoc />
    public readonly float Apply(int i, float x)
    {
        float y = (x - Mean) * Rstd;
        if (HasGamma != 0) y *= Gamma[i];
        if (HasBeta != 0) y += Beta[i];
        return y;
    }
}

/// <summary>The summand of a per-thread reduction (<see cref="HalfNormKernels.ThreadSum{TF, TTerm}"/>) as a function of one element.</summary>
public interface ISumTerm
{
    /// <summary>The term of element value <paramref name="x"/>.</summary>
    float Of(float x);
}

/// <summary>The norms' moments: x itself, or (x - center)^2 when <see cref="Squares"/> is set.</summary>
public struct MomentTerm : ISumTerm
{
    /// <summary>1: the squared deviation from <see cref="Center"/>.</summary>
    public int Squares;
    /// <summary>The mean the deviation is taken from.</summary>
    public float Center;

    /// <inheritdoc />
    public readonly float Of(float x)
    {
        if (Squares == 0) return x;
        float d = x - Center;
        return d * d;
    }
}

/// <summary>
/// GroupNorm (+ SiLU) and LayerNorm over F16 / BF16 activations: fp32 statistics, 64-bit loads and stores
/// of four halves where the block is 8-byte aligned (single halves for the rest and for unaligned blocks),
/// one rounding per output. Each thread's statistics run over the very elements, in the very order, of the
/// float32 kernels in <see cref="NormKernels"/> (a quad tile is transposed through shared memory), so on
/// rounded inputs the result is theirs, rounded once; the last pass is element-wise.
/// <para>Launch as the float32 kernels, with (1 + <see cref="TileFactor"/>) G floats of dynamic shared
/// memory for the statistics kernels.</para>
/// </summary>
public static class HalfNormKernels
{
    /// <summary>Halves per vector load.</summary>
    public const int Quad = 4;

    /// <summary>Shared floats per thread beyond the reduction scratch: the padded quad tile.</summary>
    public const int TileFactor = Quad + 1;

    // One padding float per 32 keeps the quad tile's stores (stride 4) and reads (stride 1) off shared bank conflicts.
    private static int Pad(int i) => i + (i >> 5);

    /// <summary>
    /// Thread t's sum of x (<paramref name="squares"/> = 0) or of (x - center)^2 over elements begin + t + G j
    /// &lt; end of the block at <paramref name="start"/>, in increasing j: the float32 kernels' own per-thread
    /// sequence. Every thread of the group must call it (barriers).
    /// </summary>
    public static float ThreadSum<TF>(HalfTensor x, long start, int begin, int end, int squares, float center, ArrayView<float> tile)
        where TF : struct, IHalfFormat =>
        ThreadSum<TF, MomentTerm>(x, start, begin, end, new MomentTerm { Squares = squares, Center = center }, tile);

    /// <summary>
    /// Thread t's sum of term(x) over elements begin + t + G j &lt; end of the block at <paramref name="start"/>,
    /// in increasing j: the float32 kernels' own per-thread sequence. Each round loads 4G elements (quads where
    /// aligned) into the tile, then every thread takes its four from there. Every thread of the group must call
    /// it (barriers).
    /// </summary>
    public static float ThreadSum<TF, TTerm>(HalfTensor x, long start, int begin, int end, TTerm term, ArrayView<float> tile)
        where TF : struct, IHalfFormat where TTerm : struct, ISumTerm
    {
        int t = Group.IdxX, g = Group.DimX;
        bool quads = x.QuadAligned(start + begin);
        float acc = 0f;
        for (int b = begin; b < end; b += Quad * g)
        {
            int e = b + Quad * t;
            if (quads && e + Quad <= end)
            {
                ulong q = x.ReadQuad(start + e);
                for (int j = 0; j < Quad; j++) tile[Pad(Quad * t + j)] = HalfTensor.Lane<TF>(q, j);
            }
            else
            {
                for (int j = 0; j < Quad; j++) tile[Pad(Quad * t + j)] = e + j < end ? x.Read<TF>(start + e + j) : 0f;
            }
            Group.Barrier();
            for (int j = 0; j < Quad; j++)
            {
                int local = t + g * j;
                if (b + local >= end) continue;
                acc += term.Of(tile[Pad(local)]);
            }
            Group.Barrier();
        }
        return acc;
    }

    /// <summary>
    /// output[start + i] = op(i, x[start + i]) for i in [begin, end), quads where both tensors are aligned
    /// there, single elements for the rest.
    /// </summary>
    public static void ApplyRange<TF, TOp>(HalfTensor x, HalfTensor output, long start, int begin, int end, TOp op)
        where TF : struct, IHalfFormat where TOp : struct, INormApply
    {
        int t = Group.IdxX, g = Group.DimX;
        var format = default(TF);
        int quads = x.QuadAligned(start + begin) && output.QuadAligned(start + begin) ? (end - begin) / Quad : 0;
        for (int q = t; q < quads; q += g)
        {
            int i = begin + Quad * q;
            ulong v = x.ReadQuad(start + i);
            ulong r = format.Encode(op.Apply(i, HalfTensor.Lane<TF>(v, 0)))
                | (ulong)format.Encode(op.Apply(i + 1, HalfTensor.Lane<TF>(v, 1))) << 16
                | (ulong)format.Encode(op.Apply(i + 2, HalfTensor.Lane<TF>(v, 2))) << 32
                | (ulong)format.Encode(op.Apply(i + 3, HalfTensor.Lane<TF>(v, 3))) << 48;
            output.WriteQuad(start + i, r);
        }
        for (int i = begin + Quad * quads + t; i < end; i += g) output.Write<TF>(start + i, op.Apply(i, x.Read<TF>(start + i)));
    }

    /// <summary>The reduction scratch (G floats) and the quad tile after it, from the dynamic shared memory.</summary>
    private static void Shared(out ArrayView<float> scratch, out ArrayView<float> tile)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int g = Group.DimX;
        scratch = shared.SubView(0, g);
        tile = shared.SubView(g, TileFactor * g);
    }

    /// <summary>
    /// <see cref="NormKernels.GroupNorm"/> over half activations. Launch: grid (N * Groups), group G (power of
    /// two, at most 256), (1 + <see cref="TileFactor"/>) G floats of dynamic shared memory.
    /// </summary>
    public static void GroupNorm<TF>(HalfTensor x, ArrayView<float> gamma, ArrayView<float> beta, HalfTensor output, GroupNormParams p)
        where TF : struct, IHalfFormat
    {
        Shared(out var scratch, out var tile);
        int block = Grid.IdxX;
        int count = p.ChannelsPerGroup * p.Spatial;
        long start = (long)block * count;
        float mean = NormKernels.GroupSum(ThreadSum<TF>(x, start, 0, count, 0, 0f, tile), scratch) / count;
        float rstd = 1f / MathF.Sqrt(NormKernels.GroupSum(ThreadSum<TF>(x, start, 0, count, 1, mean, tile), scratch) / count + p.Eps);
        var op = new GroupNormAffine { Gamma = gamma, Beta = beta, P = p, Mean = mean, Rstd = rstd, Channel0 = (block % p.Groups) * p.ChannelsPerGroup };
        ApplyRange<TF, GroupNormAffine>(x, output, start, 0, count, op);
    }

    /// <summary>
    /// <see cref="NormKernels.GroupNormPartial"/> over half activations (same partials layout). Launch: grid
    /// (N * Groups, S), group G, (1 + <see cref="TileFactor"/>) G floats of dynamic shared memory.
    /// </summary>
    public static void GroupNormPartial<TF>(HalfTensor x, ArrayView<float> partials, GroupNormParams p) where TF : struct, IHalfFormat
    {
        Shared(out var scratch, out var tile);
        int gi = Grid.IdxX, split = Grid.IdxY, splits = Grid.DimY;
        int count = p.ChannelsPerGroup * p.Spatial, chunk = (count + splits - 1) / splits;
        int begin = split * chunk, end = begin + chunk < count ? begin + chunk : count;
        if (begin > end) begin = end;
        int n = end - begin;
        long start = (long)gi * count;
        float total = NormKernels.GroupSum(ThreadSum<TF>(x, start, begin, end, 0, 0f, tile), scratch);
        float mean = n > 0 ? total / n : 0f;
        float m2 = NormKernels.GroupSum(ThreadSum<TF>(x, start, begin, end, 1, mean, tile), scratch);
        if (Group.IdxX == 0)
        {
            long o = ((long)gi * splits + split) * 2;
            partials[o] = mean;
            partials[o + 1] = m2;
        }
    }

    /// <summary>
    /// <see cref="NormKernels.GroupNormApply"/> over half activations: combines the partials as it does, then
    /// normalises this block's chunk. Launch: as <see cref="GroupNormPartial{TF}"/>, no shared memory.
    /// </summary>
    public static void GroupNormApply<TF>(HalfTensor x, ArrayView<float> partials, ArrayView<float> gamma, ArrayView<float> beta,
        HalfTensor output, GroupNormParams p) where TF : struct, IHalfFormat
    {
        int gi = Grid.IdxX, split = Grid.IdxY, splits = Grid.DimY;
        int count = p.ChannelsPerGroup * p.Spatial, chunk = (count + splits - 1) / splits;
        var stats = NormKernels.CombinePartials(partials, gi, splits, count, p.Eps);
        int begin = split * chunk, end = begin + chunk < count ? begin + chunk : count;
        if (begin >= end) return;
        var op = new GroupNormAffine { Gamma = gamma, Beta = beta, P = p, Mean = stats.Mean, Rstd = stats.Rstd, Channel0 = (gi % p.Groups) * p.ChannelsPerGroup };
        ApplyRange<TF, GroupNormAffine>(x, output, (long)gi * count, begin, end, op);
    }

    /// <summary>
    /// <see cref="NormKernels.LayerNorm"/> over half activations. Launch: grid (rows), group G (power of two,
    /// at most 256), (1 + <see cref="TileFactor"/>) G floats of dynamic shared memory.
    /// </summary>
    public static void LayerNorm<TF>(HalfTensor x, ArrayView<float> gamma, ArrayView<float> beta, HalfTensor output,
        int d, float eps, int hasGamma, int hasBeta) where TF : struct, IHalfFormat
    {
        Shared(out var scratch, out var tile);
        long start = (long)Grid.IdxX * d;
        float mean = NormKernels.GroupSum(ThreadSum<TF>(x, start, 0, d, 0, 0f, tile), scratch) / d;
        float rstd = 1f / MathF.Sqrt(NormKernels.GroupSum(ThreadSum<TF>(x, start, 0, d, 1, mean, tile), scratch) / d + eps);
        var op = new LayerNormAffine { Gamma = gamma, Beta = beta, Mean = mean, Rstd = rstd, HasGamma = hasGamma, HasBeta = hasBeta };
        ApplyRange<TF, LayerNormAffine>(x, output, start, 0, d, op);
    }
}
