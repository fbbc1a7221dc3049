namespace Engine.Models.Modules;

/// <summary>
/// diffusers <c>get_2d_sincos_pos_embed</c>, computed on the host in double precision (as numpy does)
/// and returned as float32 [gridH * gridW, dim]. Positions are <c>arange(n) / (n / baseSize) /
/// interpolationScale</c>; the first half of each row embeds the column (w) coordinate, the second
/// half the row (h) coordinate, each as [sin(pos * w_k), cos(pos * w_k)] with w_k = 10000^(-k / (dim/4)).
/// </summary>
public static class SinCosPositionEmbedding
{
    /// <summary>The table for a gridH x gridW token grid, row-major (token index = i * gridW + j).</summary>
    public static float[] Create(int dim, int gridH, int gridW, double baseSize, double interpolationScale = 1.0)
    {
        if (dim % 4 != 0) throw new ArgumentException($"2-D sin-cos position embedding needs a width divisible by 4, got {dim}.");
        int half = dim / 2, quarter = dim / 4;
        var omega = new double[quarter];
        for (int k = 0; k < quarter; k++) omega[k] = 1.0 / Math.Pow(10000.0, k / (double)quarter);
        var table = new float[gridH * gridW * dim];
        for (int i = 0; i < gridH; i++)
        {
            // numpy builds the grid in float32: arange(n, float32) / (n / base) / scale.
            double posH = (float)((float)i / (gridH / baseSize) / interpolationScale);
            for (int j = 0; j < gridW; j++)
            {
                double posW = (float)((float)j / (gridW / baseSize) / interpolationScale);
                int row = (i * gridW + j) * dim;
                for (int k = 0; k < quarter; k++)
                {
                    table[row + k] = (float)Math.Sin(posW * omega[k]);
                    table[row + quarter + k] = (float)Math.Cos(posW * omega[k]);
                    table[row + half + k] = (float)Math.Sin(posH * omega[k]);
                    table[row + half + quarter + k] = (float)Math.Cos(posH * omega[k]);
                }
            }
        }
        return table;
    }
}
