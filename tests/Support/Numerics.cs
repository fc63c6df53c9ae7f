using Xunit.Sdk;

namespace DeepScaleLM.Tests.Support;

/// <summary>Float64 finite differences and tolerance-aware comparisons.</summary>
internal static class Numerics
{
    /// <summary>
    /// Central finite-difference gradient of a scalar float64 function: d f / d x[i] ~ (f(x + h e_i) - f(x - h e_i)) / 2h.
    /// With float64 and h = 1e-6 the error is ~1e-9 relative, far below float32 kernel error.
    /// </summary>
    public static double[] Gradient(Func<double[], double> function, double[] x, double step = 1e-6)
    {
        var gradient = new double[x.Length];
        var probe = (double[])x.Clone();
        for (int i = 0; i < x.Length; i++)
        {
            double saved = probe[i];
            probe[i] = saved + step;
            double plus = function(probe);
            probe[i] = saved - step;
            double minus = function(probe);
            probe[i] = saved;
            gradient[i] = (plus - minus) / (2 * step);
        }
        return gradient;
    }

    /// <summary>Sum of weights[i] * values[i]: a random projection turns a tensor-valued op into a scalar loss whose gradient is the op's backward applied to weights.</summary>
    public static double Dot(double[] weights, double[] values)
    {
        double sum = 0;
        for (int i = 0; i < values.Length; i++) sum += weights[i] * values[i];
        return sum;
    }

    /// <summary>
    /// Asserts |actual - expected| &lt;= absolute + relative * scale element-wise, where scale is the largest
    /// |expected| (errors of float32 kernels grow with the magnitude of the result, not of each element).
    /// </summary>
    public static void AssertClose(double[] expected, double[] actual, double relative, double absolute = 0, string what = "value")
    {
        if (expected.Length != actual.Length)
            throw new XunitException($"{what}: expected {expected.Length} elements, got {actual.Length}");
        double scale = 0;
        foreach (var e in expected) scale = Math.Max(scale, Math.Abs(e));
        double tolerance = absolute + relative * scale;
        for (int i = 0; i < expected.Length; i++)
        {
            double error = Math.Abs(actual[i] - expected[i]);
            if (!(error <= tolerance))
                throw new XunitException($"{what}[{i}]: expected {expected[i]:R}, got {actual[i]:R} (error {error:E3} > tolerance {tolerance:E3}; max |expected| {scale:E3})");
        }
    }
}
