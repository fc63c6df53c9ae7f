namespace DeepScaleLM.Tests.Support;

/// <summary>
/// Float64 references for the standard normal distribution, independent of the kernels' erfc fit: a series for
/// small arguments and a continued fraction for large ones, both accurate to ~1e-15 relative.
/// </summary>
internal static class Gaussian
{
    /// <summary>erfc(z) for any real z.</summary>
    public static double Erfc(double z)
    {
        if (double.IsNaN(z)) return double.NaN;
        if (z < 0) return 2 - Erfc(-z);
        if (z < 3)
        {
            // erf(z) = 2/sqrt(pi) exp(-z^2) sum_n 2^n z^(2n+1) / (1 * 3 * ... * (2n+1)): all terms positive, no cancellation.
            double term = z, sum = z;
            for (int n = 1; n < 500 && term > 1e-17 * sum; n++)
            {
                term *= 2 * z * z / (2 * n + 1);
                sum += term;
            }
            return 1 - 2 / Math.Sqrt(Math.PI) * Math.Exp(-z * z) * sum;
        }
        // erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + ...)))), evaluated from the tail up.
        double fraction = z;
        for (int k = 300; k >= 1; k--) fraction = z + k / 2.0 / fraction;
        return Math.Exp(-z * z) / Math.Sqrt(Math.PI) / fraction;
    }

    /// <summary>Phi(x) = erfc(-x / sqrt 2) / 2, which keeps relative accuracy in the lower tail.</summary>
    public static double Cdf(double x) => 0.5 * Erfc(-x / Math.Sqrt(2));

    /// <summary>phi(x) = exp(-x^2 / 2) / sqrt(2 pi).</summary>
    public static double Pdf(double x) => Math.Exp(-0.5 * x * x) / Math.Sqrt(2 * Math.PI);
}
