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

/// <summary>IEEE binary16 (<see cref="HalfBits"/>: the same bits on every backend for every value but NaN).</summary>
public struct F16Format : IHalfFormat
{
    /// <inheritdoc />
    public readonly float Decode(ushort bits) => HalfBits.ToFloat(bits);

    /// <inheritdoc />
    public readonly ushort Encode(float value) => HalfBits.FromFloat(value);
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
        float scale = Scale(ch);
        return Finish(x, scale, Shift(ch, scale));
    }

    /// <summary>The factor of channel <paramref name="ch"/>: rstd times its gamma.</summary>
    public readonly float Scale(int ch) => Rstd * (P.HasGamma != 0 ? Gamma[ch] : 1f);

    /// <summary>The offset of channel <paramref name="ch"/> with factor <paramref name="scale"/>: beta - mean scale.</summary>
    public readonly float Shift(int ch, float scale) => (P.HasBeta != 0 ? Beta[ch] : 0f) - Mean * scale;

    /// <summary>x scale + shift, then SiLU when the params say so.</summary>
    public readonly float Finish(float x, float scale, float shift)
    {
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
/// one rounding per output. The one-block kernels' statistics run over the very elements, in the very order,
/// of the float32 kernels in <see cref="NormKernels"/> (a quad tile is transposed through shared memory), so on
/// rounded inputs the result is theirs, rounded once; the split GroupNorm's statistics take one shifted pass
/// instead (<see cref="GroupNormPartial{TF}"/>: the large groups, where bandwidth matters); the last pass is
/// element-wise.
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
        where TF : struct, IHalfFormat where TOp : struct, INormApply =>
        ApplyRange<TF, TOp>(x, output, start, begin, end, op, Group.IdxX, Group.DimX);

    /// <summary><see cref="ApplyRange{TF, TOp}(HalfTensor, HalfTensor, long, int, int, TOp)"/> shared by <paramref name="g"/> threads, this one <paramref name="t"/>.</summary>
    private static void ApplyRange<TF, TOp>(HalfTensor x, HalfTensor output, long start, int begin, int end, TOp op, int t, int g)
        where TF : struct, IHalfFormat where TOp : struct, INormApply
    {
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
        ApplyGroupNorm<TF>(x, output, start, 0, count, op);
    }

    /// <summary>
    /// The split GroupNorm's statistics over half activations, one read of the chunk: block (gi, s) writes the
    /// mean and M2 of the s-th chunk of group gi in <see cref="NormKernels.GroupNormPartial"/>'s partials layout.
    /// Unlike the float32 kernel (a pass for the mean, another for the squared deviations), each thread sums
    /// d = x - k and d^2 with k the group's first element, and M2 = sum d^2 - (sum d)^2 / n: a bandwidth-bound pass
    /// of 64-bit loads with no barrier per element tile. The shift keeps the cancellation to about (mean - k)^2 / var
    /// units of fp32 rounding in the variance, far below half precision for any k within a few deviations of the
    /// mean (any element of the group, typically). Launch: grid (N * Groups, S), group G (power of two, at most 256),
    /// at least G floats of dynamic shared memory.
    /// </summary>
    public static void GroupNormPartial<TF>(HalfTensor x, ArrayView<float> partials, GroupNormParams p) where TF : struct, IHalfFormat
    {
        var scratch = SharedMemory.GetDynamic<float>().SubView(0, Group.DimX);
        int gi = Grid.IdxX, split = Grid.IdxY, splits = Grid.DimY, t = Group.IdxX, g = Group.DimX;
        int count = p.ChannelsPerGroup * p.Spatial, chunk = (count + splits - 1) / splits;
        int begin = split * chunk, end = begin + chunk < count ? begin + chunk : count;
        if (begin > end) begin = end;
        int n = end - begin;
        long start = (long)gi * count;
        float shift = count > 0 ? x.Read<TF>(start) : 0f;
        var sums = ShiftedSums<TF>(x, start, begin, end, shift, t, g);
        float s1 = NormKernels.GroupSum(sums.Sum, scratch);
        float s2 = NormKernels.GroupSum(sums.Squares, scratch);
        if (t == 0)
        {
            long o = ((long)gi * splits + split) * 2;
            partials[o] = n > 0 ? shift + s1 / n : 0f;
            partials[o + 1] = n > 0 ? MathF.Max(0f, s2 - s1 * s1 / n) : 0f;
        }
    }

    /// <summary>
    /// Thread <paramref name="t"/>'s (of <paramref name="g"/>) sums of d = x - <paramref name="shift"/> and d^2 over its
    /// share of elements [begin, end) of the block at <paramref name="start"/>: the up to three elements before the first
    /// quad boundary and after the last one singly, the quads between four per thread and round (loads issued before
    /// their sums).
    /// </summary>
    private static ShiftedMoments ShiftedSums<TF>(HalfTensor x, long start, int begin, int end, float shift, int t, int g) where TF : struct, IHalfFormat
    {
        int head = (int)((Quad - ((x.Base + start + begin) & (Quad - 1))) & (Quad - 1));
        if (head > end - begin) head = end - begin;
        int quads = (end - begin - head) / Quad, body = begin + head, tail = body + Quad * quads;
        var m = new ShiftedMoments { Shift = shift };
        if (t < head) m = m.Add(x.Read<TF>(start + begin + t));
        if (t < end - tail) m = m.Add(x.Read<TF>(start + tail + t));
        int q = t;
        for (; q + 3 * g < quads; q += 4 * g)
        {
            ulong a = x.ReadQuad(start + body + (long)Quad * q), b = x.ReadQuad(start + body + (long)Quad * (q + g));
            ulong c = x.ReadQuad(start + body + (long)Quad * (q + 2 * g)), e = x.ReadQuad(start + body + (long)Quad * (q + 3 * g));
            m = m.AddQuad<TF>(a).AddQuad<TF>(b).AddQuad<TF>(c).AddQuad<TF>(e);
        }
        for (; q < quads; q += g) m = m.AddQuad<TF>(x.ReadQuad(start + body + (long)Quad * q));
        return m;
    }

    /// <summary>Running sums of d = x - <see cref="Shift"/> and of d^2.</summary>
    private struct ShiftedMoments
    {
        public float Shift, Sum, Squares;

        public readonly ShiftedMoments Add(float x)
        {
            float d = x - Shift;
            return new ShiftedMoments { Shift = Shift, Sum = Sum + d, Squares = Squares + d * d };
        }

        public readonly ShiftedMoments AddQuad<TF>(ulong quad) where TF : struct, IHalfFormat =>
            Add(HalfTensor.Lane<TF>(quad, 0)).Add(HalfTensor.Lane<TF>(quad, 1)).Add(HalfTensor.Lane<TF>(quad, 2)).Add(HalfTensor.Lane<TF>(quad, 3));
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
        ApplyGroupNorm<TF>(x, output, (long)gi * count, begin, end, op);
    }

    /// <summary>
    /// <see cref="ApplyRange{TF, TOp}(HalfTensor, HalfTensor, long, int, int, TOp)"/> for GroupNorm, with the same values: where both tensors are quad-aligned, each
    /// quad whose four elements share a channel takes that channel's factor and offset once (one division per quad,
    /// not four), and each thread loads two quads before it stores either.
    /// </summary>
    private static void ApplyGroupNorm<TF>(HalfTensor x, HalfTensor output, long start, int begin, int end, GroupNormAffine op)
        where TF : struct, IHalfFormat
    {
        int t = Group.IdxX, g = Group.DimX;
        int quads = x.QuadAligned(start + begin) && output.QuadAligned(start + begin) ? (end - begin) / Quad : 0;
        int q = t;
        for (; q + g < quads; q += 2 * g)
        {
            int i = begin + Quad * q, k = i + Quad * g;
            ulong a = x.ReadQuad(start + i), b = x.ReadQuad(start + k);
            output.WriteQuad(start + i, GroupNormQuad<TF>(a, i, op));
            output.WriteQuad(start + k, GroupNormQuad<TF>(b, k, op));
        }
        if (q < quads)
        {
            int i = begin + Quad * q;
            output.WriteQuad(start + i, GroupNormQuad<TF>(x.ReadQuad(start + i), i, op));
        }
        for (int i = begin + Quad * quads + t; i < end; i += g) output.Write<TF>(start + i, op.Apply(i, x.Read<TF>(start + i)));
    }

    /// <summary>The normalised quad of elements i .. i + 3 of the group (the values of <see cref="GroupNormAffine.Apply"/>).</summary>
    private static ulong GroupNormQuad<TF>(ulong v, int i, GroupNormAffine op) where TF : struct, IHalfFormat
    {
        var format = default(TF);
        int spatial = op.P.Spatial, c = i / spatial;
        if (i - c * spatial + Quad - 1 >= spatial)
            return format.Encode(op.Apply(i, HalfTensor.Lane<TF>(v, 0)))
                | (ulong)format.Encode(op.Apply(i + 1, HalfTensor.Lane<TF>(v, 1))) << 16
                | (ulong)format.Encode(op.Apply(i + 2, HalfTensor.Lane<TF>(v, 2))) << 32
                | (ulong)format.Encode(op.Apply(i + 3, HalfTensor.Lane<TF>(v, 3))) << 48;
        int ch = op.Channel0 + c;
        float scale = op.Scale(ch), shift = op.Shift(ch, scale);
        return format.Encode(op.Finish(HalfTensor.Lane<TF>(v, 0), scale, shift))
            | (ulong)format.Encode(op.Finish(HalfTensor.Lane<TF>(v, 1), scale, shift)) << 16
            | (ulong)format.Encode(op.Finish(HalfTensor.Lane<TF>(v, 2), scale, shift)) << 32
            | (ulong)format.Encode(op.Finish(HalfTensor.Lane<TF>(v, 3), scale, shift)) << 48;
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

    /// <summary>
    /// <see cref="NormKernels.LayerNorm"/> over half activations, one warp per row: each lane sums d = x - k and d^2
    /// over its quads of the row (k the row's first element, as <see cref="GroupNormPartial{TF}"/> does), the warp adds
    /// the lanes' sums by shuffles, and the lanes normalise their quads: one read for the statistics and one for the
    /// output, no shared memory and no barrier (the one-block kernel reads the row twice for them through the tile,
    /// with a 256-thread block on a row of a few hundred elements). Launch: grid ceil(rows / (G / warp size)), group G
    /// (a multiple of the warp size), no shared memory; 32-lane warps with shuffles (CUDA, the CPU accelerator).
    /// </summary>
    public static void LayerNormRows<TF>(HalfTensor x, ArrayView<float> gamma, ArrayView<float> beta, HalfTensor output,
        int rows, int d, float eps, int hasGamma, int hasBeta) where TF : struct, IHalfFormat
    {
        int lanes = Warp.WarpSize, lane = Warp.LaneIdx;
        int row = Grid.IdxX * (Group.DimX / lanes) + Group.IdxX / lanes;
        // Whole warps leave together: every lane of a warp has the same row.
        if (row >= rows) return;
        long start = (long)row * d;
        float shift = x.Read<TF>(start);
        var m = ShiftedSums<TF>(x, start, 0, d, shift, lane, lanes);
        float s1 = m.Sum, s2 = m.Squares;
        for (int offset = lanes / 2; offset > 0; offset >>= 1)
        {
            s1 += Warp.ShuffleXor(s1, offset);
            s2 += Warp.ShuffleXor(s2, offset);
        }
        float mean = shift + s1 / d;
        float rstd = 1f / MathF.Sqrt(MathF.Max(0f, s2 - s1 * s1 / d) / d + eps);
        var op = new LayerNormAffine { Gamma = gamma, Beta = beta, Mean = mean, Rstd = rstd, HasGamma = hasGamma, HasBeta = hasBeta };
        ApplyRange<TF, LayerNormAffine>(x, output, start, 0, d, op, lane, lanes);
    }
}
