using System.Runtime.InteropServices;
using Engine.Core.Safetensors;

namespace Engine.Tools.Quality;

/// <summary>Mean and covariance of feature vectors (double precision), one side of a Frechet distance.</summary>
public sealed class GaussianStats
{
    /// <summary>Wraps a mean [d] and a row-major covariance [d, d] (not copied).</summary>
    public GaussianStats(double[] mean, double[] covariance)
    {
        ArgumentNullException.ThrowIfNull(mean);
        ArgumentNullException.ThrowIfNull(covariance);
        if (mean.Length == 0 || covariance.LongLength != (long)mean.Length * mean.Length)
            throw new ArgumentException($"Covariance has {covariance.LongLength} values; a mean of {mean.Length} needs {(long)mean.Length * mean.Length}.");
        Mean = mean; Covariance = covariance;
    }

    /// <summary>Mean vector [d].</summary>
    public double[] Mean { get; }

    /// <summary>Covariance [d, d], row-major.</summary>
    public double[] Covariance { get; }

    /// <summary>Feature dimension d.</summary>
    public int Dimension => Mean.Length;

    /// <summary>
    /// Mean and unbiased (N - 1) covariance of <paramref name="count"/> feature rows of length
    /// <paramref name="dimension"/> (row-major), accumulated in double. Needs at least two rows.
    /// </summary>
    public static GaussianStats FromFeatures(ReadOnlySpan<float> features, int count, int dimension)
    {
        if (dimension < 1) throw new ArgumentOutOfRangeException(nameof(dimension), dimension, "Feature dimension must be >= 1.");
        if (count < 2) throw new ArgumentException($"A covariance needs at least 2 feature vectors; got {count}.", nameof(count));
        if (features.Length != (long)count * dimension) throw new ArgumentException($"{features.Length} values for {count} x {dimension} features.", nameof(features));
        var mean = new double[dimension];
        for (int i = 0; i < count; i++)
            for (int j = 0; j < dimension; j++) mean[j] += features[i * dimension + j];
        for (int j = 0; j < dimension; j++) mean[j] /= count;
        var cov = new double[dimension * dimension];
        var centered = new double[dimension];
        for (int i = 0; i < count; i++)
        {
            for (int j = 0; j < dimension; j++) centered[j] = features[i * dimension + j] - mean[j];
            for (int r = 0; r < dimension; r++)
            {
                double cr = centered[r];
                if (cr == 0) continue;
                for (int c = r; c < dimension; c++) cov[r * dimension + c] += cr * centered[c];
            }
        }
        for (int r = 0; r < dimension; r++)
            for (int c = r; c < dimension; c++)
            {
                double value = cov[r * dimension + c] / (count - 1);
                cov[r * dimension + c] = value;
                cov[c * dimension + r] = value;
            }
        return new GaussianStats(mean, cov);
    }

    /// <summary>
    /// Reads statistics from a safetensors file: <paramref name="meanName"/> [d] and
    /// <paramref name="covarianceName"/> [d, d], both F64 (the defaults are the names the shipped
    /// classifier's <c>test_feature_stats.safetensors</c> uses for its double-precision copies).
    /// </summary>
    public static GaussianStats Load(string path, string meanName = "mu_f64", string covarianceName = "sigma_f64")
    {
        using var file = SafetensorsFile.Open(path);
        var mean = ReadDoubles(file, path, meanName, 1);
        var cov = ReadDoubles(file, path, covarianceName, 2);
        var covShape = file.Info(covarianceName).Shape;
        if (covShape[0] != mean.Length || covShape[1] != mean.Length)
            throw new InvalidDataException($"{path}: '{covarianceName}' is {Core.Tensor.ShapeString(covShape)}; '{meanName}' has {mean.Length} elements.");
        for (int i = 0; i < mean.Length; i++)
            for (int j = i + 1; j < mean.Length; j++)
                if (Math.Abs(cov[i * mean.Length + j] - cov[j * mean.Length + i]) > 1e-9 * Math.Max(1, Math.Abs(cov[i * mean.Length + j])))
                    throw new InvalidDataException($"{path}: '{covarianceName}' is not symmetric at ({i}, {j}).");
        return new GaussianStats(mean, cov);
    }

    private static double[] ReadDoubles(SafetensorsFile file, string path, string name, int rank)
    {
        if (!file.Contains(name)) throw new InvalidDataException($"{path}: missing tensor '{name}'.");
        var info = file.Info(name);
        if (info.Type != StorageType.F64) throw new InvalidDataException($"{path}: tensor '{name}' is {info.Type}; F64 expected.");
        if (info.Shape.Length != rank || info.Length == 0) throw new InvalidDataException($"{path}: tensor '{name}' is {Core.Tensor.ShapeString(info.Shape)}; rank {rank} expected.");
        var values = MemoryMarshal.Cast<byte, double>(file.GetBytes(name)).ToArray();
        foreach (double v in values) if (!double.IsFinite(v)) throw new InvalidDataException($"{path}: tensor '{name}' holds a non-finite value.");
        return values;
    }
}
