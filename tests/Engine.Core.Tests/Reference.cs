namespace Engine.Core.Tests;

/// <summary>
/// Naive double-precision reference implementations and random data for the randomised op tests.
/// Written for clarity, not speed; sizes in the tests stay small.
/// </summary>
public static class Reference
{
    /// <summary>Uniform values in [-1, 1) from a seeded generator.</summary>
    public static float[] Random(Random rng, int count, float scale = 1f)
    {
        var data = new float[count];
        for (int i = 0; i < count; i++) data[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
        return data;
    }

    /// <summary>Relative error (max abs error / max abs reference) of float results against a double reference.</summary>
    public static double Compare(float[] actual, double[] expected)
    {
        var e = new float[expected.Length];
        for (int i = 0; i < e.Length; i++) e[i] = (float)expected[i];
        return Fixtures.RelativeError(actual, e);
    }

    public static double Silu(double x) => x / (1 + Math.Exp(-x));

    public static double Activate(double x, Activation activation) => activation switch
    {
        Activation.SiLU => Silu(x),
        Activation.GeluErf => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        Activation.GeluTanh => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x))),
        Activation.Relu => Math.Max(0, x),
        _ => x,
    };

    /// <summary>erf by its Maclaurin series for small |x| and a continued fraction tail; ~1e-12 accurate.</summary>
    public static double Erf(double x)
    {
        double ax = Math.Abs(x);
        double result;
        if (ax < 3)
        {
            double term = ax, sum = ax;
            for (int n = 1; n < 100; n++)
            {
                term *= -ax * ax / n;
                double add = term / (2 * n + 1);
                sum += add;
                if (Math.Abs(add) < 1e-17) break;
            }
            result = 2 / Math.Sqrt(Math.PI) * sum;
        }
        else
        {
            // erfc continued fraction (Lentz), enough terms for ax >= 3.
            double f = ax;
            for (int n = 60; n >= 1; n--) f = ax + n / 2.0 / f;
            result = 1 - Math.Exp(-ax * ax) / Math.Sqrt(Math.PI) / f;
        }
        return x < 0 ? -result : result;
    }

    /// <summary>C = act(alpha op(A) op(B) + bias) per batch; b shared when <paramref name="bBatch"/> is 1.</summary>
    public static double[] MatMul(float[] a, float[] b, int batch, int bBatch, int m, int n, int k, bool ta, bool tb,
        float[]? bias, Activation activation, float alpha)
    {
        var c = new double[batch * m * n];
        for (int bi = 0; bi < batch; bi++)
        {
            int aBase = bi * m * k, bBase = (bBatch == 1 ? 0 : bi) * k * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += (double)a[aBase + (ta ? p * m + i : i * k + p)] * b[bBase + (tb ? j * k + p : p * n + j)];
                    s = alpha * s + (bias?[j] ?? 0);
                    c[(bi * m + i) * n + j] = Activate(s, activation);
                }
        }
        return c;
    }

    /// <summary>PyTorch Conv2d (cross-correlation, zero padding).</summary>
    public static double[] Conv2d(float[] x, float[] w, float[]? bias, int batch, int cin, int h, int wd, int cout, int kh, int kw, int stride, int pad)
    {
        int ho = (h + 2 * pad - kh) / stride + 1, wo = (wd + 2 * pad - kw) / stride + 1;
        var y = new double[batch * cout * ho * wo];
        for (int n = 0; n < batch; n++)
            for (int o = 0; o < cout; o++)
                for (int oy = 0; oy < ho; oy++)
                    for (int ox = 0; ox < wo; ox++)
                    {
                        double s = bias?[o] ?? 0;
                        for (int c = 0; c < cin; c++)
                            for (int ky = 0; ky < kh; ky++)
                                for (int kx = 0; kx < kw; kx++)
                                {
                                    int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    s += (double)x[((n * cin + c) * h + iy) * wd + ix] * w[((o * cin + c) * kh + ky) * kw + kx];
                                }
                        y[((n * cout + o) * ho + oy) * wo + ox] = s;
                    }
        return y;
    }

    /// <summary>softmax(q k^T scale) v per (batch, head) with heads as slices of the last dimension.</summary>
    public static double[] Attention(float[] q, float[] k, float[] v, int batch, int lq, int lk, int heads, int d, double scale)
    {
        int width = heads * d;
        var o = new double[batch * lq * width];
        var s = new double[lk];
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < lq; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < lk; j++)
                    {
                        double dot = 0;
                        for (int t = 0; t < d; t++) dot += (double)q[(b * lq + i) * width + h * d + t] * k[(b * lk + j) * width + h * d + t];
                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < lk; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int t = 0; t < d; t++)
                    {
                        double acc = 0;
                        for (int j = 0; j < lk; j++) acc += s[j] * v[(b * lk + j) * width + h * d + t];
                        o[(b * lq + i) * width + h * d + t] = acc / sum;
                    }
                }
        return o;
    }
}
