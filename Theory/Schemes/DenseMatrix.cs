namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// The float64 dense-matrix operations the bidirectional E-SPA construction needs (spa-theory.md 2.1: the symmetric
/// square root of Sigma_l), on plain square double[,] arrays. The causal path needs none: its Cholesky factors and their
/// inverses have closed forms.
/// </summary>
internal static class DenseMatrix
{
    public static double[,] Multiply(double[,] left, double[,] right)
    {
        int n = left.GetLength(0), inner = left.GetLength(1), m = right.GetLength(1);
        var product = new double[n, m];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < inner; k++)
            {
                double a = left[i, k];
                if (a == 0) continue;
                for (int j = 0; j < m; j++) product[i, j] += a * right[k, j];
            }
        return product;
    }

    /// <summary>
    /// a^(1/2) and a^(-1/2) for a symmetric positive definite a, from one eigendecomposition by cyclic Jacobi rotations
    /// (accurate to a few ulps in float64; O(n^3) per sweep, meant for sequence-length-sized matrices).
    /// </summary>
    public static (double[,] Root, double[,] InverseRoot) SymmetricSquareRoots(double[,] a)
    {
        int n = a.GetLength(0);
        var (values, vectors) = SymmetricEigen(a);
        var root = new double[n, n];
        var inverseRoot = new double[n, n];
        for (int k = 0; k < n; k++)
        {
            if (!(values[k] > 0))
                throw new ArgumentException($"Matrix is not positive definite (eigenvalue {values[k]:R}).", nameof(a));
            double rootValue = Math.Sqrt(values[k]);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    double outer = vectors[i, k] * vectors[j, k];
                    root[i, j] += outer * rootValue;
                    inverseRoot[i, j] += outer / rootValue;
                }
        }
        return (root, inverseRoot);
    }

    private static (double[] Values, double[,] Vectors) SymmetricEigen(double[,] a)
    {
        int n = a.GetLength(0);
        var m = (double[,])a.Clone();
        var v = new double[n, n];
        for (int i = 0; i < n; i++) v[i, i] = 1;
        for (int sweep = 0; sweep < 100; sweep++)
        {
            double offDiagonal = 0, total = 0;
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++)
                {
                    total += m[i, j] * m[i, j];
                    if (i != j) offDiagonal += m[i, j] * m[i, j];
                }
            if (offDiagonal <= 1e-30 * total) break;
            for (int p = 0; p < n - 1; p++)
                for (int q = p + 1; q < n; q++)
                {
                    if (m[p, q] == 0) continue;
                    // The rotation that zeroes m[p, q] (Golub & Van Loan, symmetric Schur decomposition).
                    double theta = (m[q, q] - m[p, p]) / (2 * m[p, q]);
                    double t = Math.Sign(theta) / (Math.Abs(theta) + Math.Sqrt(theta * theta + 1));
                    if (theta == 0) t = 1;
                    double c = 1 / Math.Sqrt(t * t + 1), s = t * c;
                    for (int k = 0; k < n; k++)
                    {
                        double mkp = m[k, p], mkq = m[k, q];
                        m[k, p] = c * mkp - s * mkq;
                        m[k, q] = s * mkp + c * mkq;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double mpk = m[p, k], mqk = m[q, k];
                        m[p, k] = c * mpk - s * mqk;
                        m[q, k] = s * mpk + c * mqk;
                    }
                    for (int k = 0; k < n; k++)
                    {
                        double vkp = v[k, p], vkq = v[k, q];
                        v[k, p] = c * vkp - s * vkq;
                        v[k, q] = s * vkp + c * vkq;
                    }
                }
        }
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = m[i, i];
        return (values, v);
    }
}
