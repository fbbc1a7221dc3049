using Engine.Tools.Quality;

namespace Engine.Tests;

public class FrechetDistanceTests
{
    private static string StatsPath => Path.Combine(TestPaths.Models, "fmnist-classifier", QualityEvaluator.FeatureStatsFileName);

    private static double[] RandomSymmetric(int n, Random rng)
    {
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = i; j < n; j++) a[i * n + j] = a[j * n + i] = rng.NextDouble() * 2 - 1;
        return a;
    }

    /// <summary>A random orthogonal matrix (Gram-Schmidt of a random one).</summary>
    private static double[] RandomRotation(int n, Random rng)
    {
        var q = new double[n * n];
        for (int i = 0; i < q.Length; i++) q[i] = rng.NextDouble() * 2 - 1;
        for (int col = 0; col < n; col++)
        {
            for (int prev = 0; prev < col; prev++)
            {
                double dot = 0;
                for (int r = 0; r < n; r++) dot += q[r * n + col] * q[r * n + prev];
                for (int r = 0; r < n; r++) q[r * n + col] -= dot * q[r * n + prev];
            }
            double norm = 0;
            for (int r = 0; r < n; r++) norm += q[r * n + col] * q[r * n + col];
            norm = Math.Sqrt(norm);
            for (int r = 0; r < n; r++) q[r * n + col] /= norm;
        }
        return q;
    }

    /// <summary>R diag(d) R^T.</summary>
    private static double[] Conjugate(double[] r, double[] d, int n)
    {
        var m = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int k = 0; k < n; k++) s += r[i * n + k] * d[k] * r[j * n + k];
                m[i * n + j] = s;
            }
        return m;
    }

    [Test]
    public void Jacobi_ReconstructsTheMatrixWithOrthonormalVectors()
    {
        const int n = 24;
        var a = RandomSymmetric(n, new Random(5));
        var (values, v) = SymmetricEigen.Decompose(a, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double recon = 0, gram = 0;
                for (int k = 0; k < n; k++) { recon += v[i * n + k] * values[k] * v[j * n + k]; gram += v[k * n + i] * v[k * n + j]; }
                Assert.That(recon, Is.EqualTo(a[i * n + j]).Within(1e-12), $"A[{i},{j}]");
                Assert.That(gram, Is.EqualTo(i == j ? 1.0 : 0.0).Within(1e-12), $"V^T V [{i},{j}]");
            }
    }

    [Test]
    public void Jacobi_RejectsNonSymmetricInput() =>
        Assert.Throws<ArgumentException>(() => SymmetricEigen.Decompose([1, 2, 3, 4], 2));

    [Test]
    public void SquareRoot_SquaresBack()
    {
        const int n = 10;
        var rng = new Random(9);
        var d = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 5).ToArray();
        var s = Conjugate(RandomRotation(n, rng), d, n);
        var root = SymmetricEigen.SquareRoot(s, n);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sq = 0;
                for (int k = 0; k < n; k++) sq += root[i * n + k] * root[k * n + j];
                Assert.That(sq, Is.EqualTo(s[i * n + j]).Within(1e-10));
            }
    }

    [Test]
    public void ShippedStatistics_HaveZeroDistanceToThemselves()
    {
        var stats = GaussianStats.Load(StatsPath);
        Assert.That(stats.Dimension, Is.EqualTo(128));
        double trace = 0;
        for (int i = 0; i < 128; i++) trace += stats.Covariance[i * 128 + i];
        double fd = FrechetDistance.Compute(stats, stats);
        Assert.That(Math.Abs(fd), Is.LessThan(1e-6 * trace), $"FD(stats, stats) = {fd}, Tr(S) = {trace}");
    }

    [Test]
    public void Distance_IsSymmetric()
    {
        var rng = new Random(11);
        const int n = 200, d = 16;
        var fa = new float[n * d];
        var fb = new float[n * d];
        for (int i = 0; i < fa.Length; i++) { fa[i] = (float)(rng.NextDouble() * 2); fb[i] = (float)(Math.Pow(rng.NextDouble(), 2) * 3 + (i % d) * 0.1); }
        var a = GaussianStats.FromFeatures(fa, n, d);
        var b = GaussianStats.FromFeatures(fb, n, d);
        double ab = FrechetDistance.Compute(a, b), ba = FrechetDistance.Compute(b, a);
        Assert.That(ab, Is.GreaterThan(0));
        Assert.That(ba, Is.EqualTo(ab).Within(1e-9 * ab));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void Distance_MatchesTheClosedFormForCommutingCovariances(bool rotated)
    {
        // For S1 = R diag(a) R^T and S2 = R diag(b) R^T: FD = ||mu1 - mu2||^2 + sum (sqrt a_i - sqrt b_i)^2.
        const int n = 12;
        var rng = new Random(rotated ? 2 : 1);
        var a = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 3 + 0.01).ToArray();
        var b = Enumerable.Range(0, n).Select(_ => rng.NextDouble() * 3 + 0.01).ToArray();
        var mu1 = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
        var mu2 = Enumerable.Range(0, n).Select(_ => rng.NextDouble()).ToArray();
        var r = rotated ? RandomRotation(n, rng) : Enumerable.Range(0, n * n).Select(i => i / n == i % n ? 1.0 : 0.0).ToArray();
        double expected = 0;
        for (int i = 0; i < n; i++) expected += (mu1[i] - mu2[i]) * (mu1[i] - mu2[i]) + Math.Pow(Math.Sqrt(a[i]) - Math.Sqrt(b[i]), 2);
        double fd = FrechetDistance.Compute(new GaussianStats(mu1, Conjugate(r, a, n)), new GaussianStats(mu2, Conjugate(r, b, n)));
        Assert.That(fd, Is.EqualTo(expected).Within(1e-9 * expected));
    }

    [Test]
    public void FromFeatures_GivesUnbiasedCovariance()
    {
        // Two features over three rows: x = (1, 2, 3), y = (2, 4, 9).
        float[] rows = [1, 2, 2, 4, 3, 9];
        var s = GaussianStats.FromFeatures(rows, 3, 2);
        Assert.That(s.Mean, Is.EqualTo(new[] { 2.0, 5.0 }).Within(1e-12));
        // var x = 1, var y = (9 + 1 + 16) / 2 = 13, cov = (-1*-3 + 0 + 1*4) / 2 = 3.5
        Assert.That(s.Covariance, Is.EqualTo(new[] { 1.0, 3.5, 3.5, 13.0 }).Within(1e-12));
        Assert.Throws<ArgumentException>(() => GaussianStats.FromFeatures([1, 2], 1, 2));
    }

    [Test]
    public void Load_RequiresF64Tensors() =>
        Assert.That(() => GaussianStats.Load(StatsPath, "mu", "sigma"),
            Throws.TypeOf<InvalidDataException>().With.Message.Contains("'mu'").And.Message.Contains("F64"));
}
