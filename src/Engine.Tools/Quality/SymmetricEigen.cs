namespace Engine.Tools.Quality;

/// <summary>
/// Eigen-decomposition of a real symmetric matrix by the cyclic Jacobi method in double precision:
/// A = V diag(values) V^T with orthonormal V. Jacobi is slow for large n but accurate for the small
/// covariance matrices (hundreds of rows) a quality metric needs, including tiny eigenvalues.
/// </summary>
public static class SymmetricEigen
{
    /// <summary>Largest number of sweeps before giving up (convergence is quadratic; ~10 suffice).</summary>
    public const int MaxSweeps = 100;

    /// <summary>
    /// Decomposes the symmetric n x n matrix <paramref name="matrix"/> (row-major, not modified).
    /// Returns the eigenvalues (unsorted) and the eigenvectors as the columns of a row-major n x n matrix.
    /// </summary>
    public static (double[] Values, double[] Vectors) Decompose(ReadOnlySpan<double> matrix, int n)
    {
        if (n < 1 || matrix.Length != (long)n * n) throw new ArgumentException($"Expected a {n}x{n} matrix; got {matrix.Length} values.", nameof(matrix));
        var a = matrix.ToArray();
        for (int i = 0; i < a.Length; i++)
            if (!double.IsFinite(a[i])) throw new ArgumentException($"Matrix element ({i / n}, {i % n}) is {a[i]}.", nameof(matrix));
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
            {
                double x = a[i * n + j], y = a[j * n + i];
                if (Math.Abs(x - y) > 1e-9 * Math.Max(1.0, Math.Max(Math.Abs(x), Math.Abs(y))))
                    throw new ArgumentException($"Matrix is not symmetric at ({i}, {j}): {x} vs {y}.", nameof(matrix));
                a[i * n + j] = a[j * n + i] = 0.5 * (x + y);
            }
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1.0;

        double total = 0;
        foreach (double x in a) total += x * x;
        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            double off = 0;
            for (int p = 0; p < n; p++)
                for (int q = p + 1; q < n; q++) off += a[p * n + q] * a[p * n + q];
            // Off-diagonal mass negligible against the whole matrix: converged to double precision.
            if (off <= 1e-30 * total || off == 0) return (Diagonal(a, n), v);
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    double apq = a[p * n + q];
                    if (apq == 0) continue;
                    double app = a[p * n + p], aqq = a[q * n + q];
                    // Rotation angle that zeroes a[p, q]: t = tan(phi) is the smaller root of t^2 + 2 theta t - 1 = 0.
                    double theta = (aqq - app) / (2 * apq);
                    double t = Math.Abs(theta) > 1e150 ? 0.5 / theta : Math.Sign(theta == 0 ? 1 : theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    Rotate(a, v, n, p, q, c, s);
                }
        }
        throw new ArithmeticException($"Jacobi eigen-decomposition of a {n}x{n} matrix did not converge in {MaxSweeps} sweeps.");
    }

    /// <summary>A := J^T A J and V := V J for the plane rotation J with J[p,p] = J[q,q] = c, J[p,q] = s, J[q,p] = -s.</summary>
    private static void Rotate(double[] a, double[] v, int n, int p, int q, double c, double s)
    {
        for (int k = 0; k < n; k++)
        {
            double akp = a[k * n + p], akq = a[k * n + q];
            a[k * n + p] = c * akp - s * akq;
            a[k * n + q] = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++)
        {
            double apk = a[p * n + k], aqk = a[q * n + k];
            a[p * n + k] = c * apk - s * aqk;
            a[q * n + k] = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++)
        {
            double vkp = v[k * n + p], vkq = v[k * n + q];
            v[k * n + p] = c * vkp - s * vkq;
            v[k * n + q] = s * vkp + c * vkq;
        }
    }

    private static double[] Diagonal(double[] a, int n)
    {
        var d = new double[n];
        for (int i = 0; i < n; i++) d[i] = a[i * n + i];
        return d;
    }

    /// <summary>
    /// The symmetric positive semi-definite square root V diag(sqrt(max(values, 0))) V^T. Negative
    /// eigenvalues (round-off of a singular covariance) are clamped to zero.
    /// </summary>
    public static double[] SquareRoot(ReadOnlySpan<double> matrix, int n)
    {
        var (values, vectors) = Decompose(matrix, n);
        var root = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            double r = Math.Sqrt(Math.Max(values[k], 0));
            if (r == 0) continue;
            for (int i = 0; i < n; i++)
            {
                double vik = vectors[i * n + k] * r;
                for (int j = 0; j < n; j++) root[i * n + j] += vik * vectors[j * n + k];
            }
        }
        return root;
    }
}
