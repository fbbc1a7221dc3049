using Engine.Core.Safetensors;

namespace Engine.Tests;

/// <summary>
/// An independent, deliberately plain host implementation of the Fashion-MNIST classifier's layers
/// (direct loops in double), to check the device forward against.
/// </summary>
public static class NaiveClassifier
{
    public static double[] Conv2d(double[] x, int n, int c, int h, int w, float[] weight, float[] bias, int o, int k, int pad)
    {
        var y = new double[n * o * h * w];
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < o; oc++)
                for (int i = 0; i < h; i++)
                    for (int j = 0; j < w; j++)
                    {
                        double s = bias[oc];
                        for (int ic = 0; ic < c; ic++)
                            for (int di = 0; di < k; di++)
                                for (int dj = 0; dj < k; dj++)
                                {
                                    int ii = i + di - pad, jj = j + dj - pad;
                                    if (ii < 0 || jj < 0 || ii >= h || jj >= w) continue;
                                    s += x[((b * c + ic) * h + ii) * w + jj] * weight[((oc * c + ic) * k + di) * k + dj];
                                }
                        y[((b * o + oc) * h + i) * w + j] = s;
                    }
        return y;
    }

    public static double[] Relu(double[] x) => x.Select(v => Math.Max(v, 0)).ToArray();

    public static double[] MaxPool(double[] x, int n, int c, int h, int w, int k)
    {
        int ho = h / k, wo = w / k;
        var y = new double[n * c * ho * wo];
        for (int b = 0; b < n * c; b++)
            for (int i = 0; i < ho; i++)
                for (int j = 0; j < wo; j++)
                {
                    double m = double.NegativeInfinity;
                    for (int di = 0; di < k; di++)
                        for (int dj = 0; dj < k; dj++) m = Math.Max(m, x[(b * h + i * k + di) * w + j * k + dj]);
                    y[(b * ho + i) * wo + j] = m;
                }
        return y;
    }

    public static double[] Linear(double[] x, int n, int inF, float[] weight, float[] bias, int outF)
    {
        var y = new double[n * outF];
        for (int b = 0; b < n; b++)
            for (int o = 0; o < outF; o++)
            {
                double s = bias[o];
                for (int i = 0; i < inF; i++) s += x[b * inF + i] * weight[o * inF + i];
                y[b * outF + o] = s;
            }
        return y;
    }

    /// <summary>The fmnist-classifier forward: returns (logits [n, 10], features [n, 128]).</summary>
    public static (double[] Logits, double[] Features) Forward(SafetensorsFile weights, float[] input, int n)
    {
        var x = input.Select(v => (double)v).ToArray();
        x = Relu(Conv2d(x, n, 1, 28, 28, weights.ReadFloats("conv1.weight"), weights.ReadFloats("conv1.bias"), 32, 3, 1));
        x = MaxPool(x, n, 32, 28, 28, 2);
        x = Relu(Conv2d(x, n, 32, 14, 14, weights.ReadFloats("conv2.weight"), weights.ReadFloats("conv2.bias"), 64, 3, 1));
        x = MaxPool(x, n, 64, 14, 14, 2);
        var features = Relu(Linear(x, n, 64 * 7 * 7, weights.ReadFloats("fc1.weight"), weights.ReadFloats("fc1.bias"), 128));
        var logits = Linear(features, n, 128, weights.ReadFloats("fc2.weight"), weights.ReadFloats("fc2.bias"), 10);
        return (logits, features);
    }
}
