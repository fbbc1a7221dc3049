using Engine.Core;
using ILGPU;
using Half = ILGPU.Half;

namespace Engine.Kernels;

/// <summary>
/// Output shape (padded to rank 6 with leading ones) and the strides of two operands over it
/// (0 along broadcast dimensions), for <see cref="ElementwiseKernels.BinaryBroadcast"/>.
/// </summary>
public struct BroadcastShape
{
    /// <summary>Output dimensions, outermost first.</summary>
    public int D0, D1, D2, D3, D4, D5;
    /// <summary>Element strides of operand a.</summary>
    public long A0, A1, A2, A3, A4, A5;
    /// <summary>Element strides of operand b.</summary>
    public long B0, B1, B2, B3, B4, B5;
}

/// <summary>Scalar arguments of <see cref="ElementwiseKernels.TimestepEmbedding"/>.</summary>
public struct TimestepParams
{
    /// <summary>Embedding width and half of it.</summary>
    public int Dim, Half;
    /// <summary>1 for [cos, sin] instead of [sin, cos].</summary>
    public int Flip;
    /// <summary>-ln(maxPeriod), computed on the host in float32.</summary>
    public float LogPeriod;
    /// <summary>diffusers downscale_freq_shift.</summary>
    public float Shift;
    /// <summary>Multiplier of the arguments.</summary>
    public float Scale;
}

/// <summary>Scalar arguments of <see cref="ElementwiseKernels.Patchify"/>.</summary>
public struct PatchParams
{
    /// <summary>Image channels, height, width.</summary>
    public int C, H, W;
    /// <summary>Patch edge.</summary>
    public int Patch;
    /// <summary>1 to scatter tokens back into the image.</summary>
    public int Unpatchify;
}

/// <summary>
/// Element-wise and data-movement kernels. All use the implicit (auto-grouped) launch: one thread
/// per output element over a 1-D index space of the given length, group size chosen by ILGPU.
/// </summary>
public static class ElementwiseKernels
{
    /// <summary>o[i] = value.</summary>
    public static void Fill(Index1D i, ArrayView<float> o, float value) => o[i] = value;

    /// <summary>o[i] = act(x[i]) with <see cref="ScalarMath.Activate"/>.</summary>
    public static void Activate(Index1D i, ArrayView<float> x, ArrayView<float> o, Activation kind) => o[i] = ScalarMath.Activate(x[i], kind);

    /// <summary>GEGLU over rows of 2d: o[r, j] = x[r, j] * gelu_erf(x[r, d + j]); index over o.</summary>
    public static void Geglu(Index1D i, ArrayView<float> x, ArrayView<float> o, int d)
    {
        int r = i / d, j = i - r * d;
        long src = (long)r * 2 * d + j;
        o[i] = x[src] * ScalarMath.GeluErf(x[src + d]);
    }

    /// <summary>Applies <paramref name="op"/> to a and b.</summary>
    public static float Apply(BinaryOp op, float a, float b) => op == BinaryOp.Add ? a + b : op == BinaryOp.Sub ? a - b : op == BinaryOp.Mul ? a * b : a / b;

    /// <summary>o[i] = a[i] (op) b[i] for equal lengths.</summary>
    public static void Binary(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, BinaryOp op) => o[i] = Apply(op, a[i], b[i]);

    /// <summary>o[i] = a[ia] (op) b[ib] with NumPy broadcasting: i is split into rank-6 coordinates.</summary>
    public static void BinaryBroadcast(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, BroadcastShape s, BinaryOp op)
    {
        long rem = i, ia = 0, ib = 0, c;
        c = rem % s.D5; rem /= s.D5; ia += c * s.A5; ib += c * s.B5;
        c = rem % s.D4; rem /= s.D4; ia += c * s.A4; ib += c * s.B4;
        c = rem % s.D3; rem /= s.D3; ia += c * s.A3; ib += c * s.B3;
        c = rem % s.D2; rem /= s.D2; ia += c * s.A2; ib += c * s.B2;
        c = rem % s.D1; rem /= s.D1; ia += c * s.A1; ib += c * s.B1;
        c = rem % s.D0; ia += c * s.A0; ib += c * s.B0;
        o[i] = Apply(op, a[ia], b[ib]);
    }

    /// <summary>o[i] = alpha * x[i] + beta (rounded as the CPU device: product, then sum).</summary>
    public static void Affine(Index1D i, ArrayView<float> x, ArrayView<float> o, float alpha, float beta)
    {
        float m = x[i] * alpha;
        o[i] = m + beta;
    }

    /// <summary>
    /// diffusers timestep embedding in float32: index over [N, half]; f = exp(logPeriod * j /
    /// (half - shift)), e = scale * (t * f); writes sin and cos halves (and a zero last column for odd
    /// dims). The argument is reduced by a multiple of 2 pi in double first, so backends whose sin/cos
    /// lose accuracy for large arguments still agree with the CPU device.
    /// </summary>
    public static void TimestepEmbedding(Index1D i, ArrayView<float> timesteps, ArrayView<float> o, TimestepParams p)
    {
        int n = i / p.Half, j = i - n * p.Half;
        float exponent = p.LogPeriod * j / (p.Half - p.Shift);
        float e = p.Scale * (timesteps[n] * ScalarMath.ExpAccurate(exponent));
        double turns = Math.Floor(e * 0.15915494309189535 + 0.5);
        float reduced = (float)(e - turns * 6.283185307179586);
        float sn = MathF.Sin(reduced), cs = MathF.Cos(reduced);
        long row = (long)n * p.Dim;
        o[row + j] = p.Flip != 0 ? cs : sn;
        o[row + p.Half + j] = p.Flip != 0 ? sn : cs;
        if (j == 0 && (p.Dim & 1) == 1) o[row + p.Dim - 1] = 0f;
    }

    /// <summary>adaLN: index over x [B, L, D]: o = x * (1 + scale[b, :]) + shift[b, :].</summary>
    public static void Modulate(Index1D i, ArrayView<float> x, ArrayView<float> shift, ArrayView<float> scale, ArrayView<float> o, int l, int d)
    {
        int col = i % d, b = i / (l * d);
        long v = (long)b * d + col;
        o[i] = x[i] * (1f + scale[v]) + shift[v];
    }

    /// <summary>adaLN gate: index over x [B, L, D]: o = residual + gate[b, :] * x.</summary>
    public static void GatedAdd(Index1D i, ArrayView<float> residual, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> o, int l, int d)
    {
        int col = i % d, b = i / (l * d);
        o[i] = residual[i] + gate[(long)b * d + col] * x[i];
    }

    /// <summary>Nearest 2x upsampling: index over o [P, 2H, 2W], o = x[p, y/2, x/2].</summary>
    public static void UpsampleNearest2x(Index1D i, ArrayView<float> x, ArrayView<float> o, int h, int w)
    {
        int w2 = 2 * w, h2 = 2 * h;
        int ox = i % w2, oy = (i / w2) % h2, plane = i / (w2 * h2);
        o[i] = x[((long)plane * h + oy / 2) * w + ox / 2];
    }

    /// <summary>Channel concat: index over o [N, aBlock + bBlock]; copies from a or b.</summary>
    public static void ConcatChannels(Index1D i, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, int aBlock, int bBlock)
    {
        int block = aBlock + bBlock, n = i / block, j = i - n * block;
        o[i] = j < aBlock ? a[(long)n * aBlock + j] : b[(long)n * bBlock + j - aBlock];
    }

    /// <summary>Channel slice: index over o [N, dstBlock]; o[n, j] = x[n, offset + j] with x rows of srcBlock.</summary>
    public static void SliceChannels(Index1D i, ArrayView<float> x, ArrayView<float> o, int srcBlock, int dstBlock, int offset)
    {
        int n = i / dstBlock, j = i - n * dstBlock;
        o[i] = x[(long)n * srcBlock + offset + j];
    }

    /// <summary>Batched transpose: index over o [B, N, M], o[b, j, r] = x[b, r, j].</summary>
    public static void Transpose(Index1D i, ArrayView<float> x, ArrayView<float> o, int m, int n)
    {
        int r = i % m, j = (i / m) % n, b = i / (m * n);
        o[i] = x[((long)b * m + r) * n + j];
    }

    /// <summary>
    /// DiT (un)patchify: index over tokens [N, gh*gw, p*p*C] with token layout (py, px, c); copies
    /// between the token element and image[n, c, gy*p + py, gx*p + px].
    /// </summary>
    public static void Patchify(Index1D i, ArrayView<float> image, ArrayView<float> tokens, PatchParams p)
    {
        int width = p.Patch * p.Patch * p.C, gw = p.W / p.Patch, gh = p.H / p.Patch;
        int e = i % width, token = i / width;
        int ci = e % p.C, px = (e / p.C) % p.Patch, py = e / (p.C * p.Patch);
        int gx = token % gw, gy = (token / gw) % gh, n = token / (gw * gh);
        long im = (((long)n * p.C + ci) * p.H + gy * p.Patch + py) * p.W + gx * p.Patch + px;
        if (p.Unpatchify != 0) image[im] = tokens[i]; else tokens[i] = image[im];
    }

    // binary16 conversions go through ScalarMath's integer versions: exact round-to-nearest-even on
    // every backend (ILGPU.Half's own conversion truncates on the CPU accelerator), no SM 5.3 needed.
    private static Half ToHalf(float v) => Interop.IntAsFloat(ScalarMath.ToHalfBits(v));

    private static float FromHalf(Half h) => ScalarMath.FromHalfBits(Interop.FloatAsInt(h));

    /// <summary>float32 to binary16 (round to nearest even).</summary>
    public static void F32ToF16(Index1D i, ArrayView<float> src, ArrayView<Half> dst) => dst[i] = ToHalf(src[i]);

    /// <summary>binary16 to float32 (exact).</summary>
    public static void F16ToF32(Index1D i, ArrayView<Half> src, ArrayView<float> dst) => dst[i] = FromHalf(src[i]);

    /// <summary>float32 to bfloat16 bits (round to nearest even; NaN stays NaN).</summary>
    public static void F32ToBF16(Index1D i, ArrayView<float> src, ArrayView<ushort> dst) => dst[i] = ScalarMath.ToBFloat16(src[i]);

    /// <summary>bfloat16 bits to float32 (exact).</summary>
    public static void BF16ToF32(Index1D i, ArrayView<ushort> src, ArrayView<float> dst) => dst[i] = ScalarMath.FromBFloat16(src[i]);

    /// <summary>binary16 to bfloat16 through float32.</summary>
    public static void F16ToBF16(Index1D i, ArrayView<Half> src, ArrayView<ushort> dst) => dst[i] = ScalarMath.ToBFloat16(FromHalf(src[i]));

    /// <summary>bfloat16 to binary16 through float32.</summary>
    public static void BF16ToF16(Index1D i, ArrayView<ushort> src, ArrayView<Half> dst) => dst[i] = ToHalf(ScalarMath.FromBFloat16(src[i]));
}
