namespace DeepScaleLM.Theory.Components;

/// <summary>
/// GeLU in its exact erf form x/2 (1 + erf(x / sqrt 2)) on a zero-mean Gaussian input (dslm-theory.md 2.3,
/// `gelu.py`). Every formula is written with a = s2 / (1 + s2).
/// </summary>
public sealed record Gelu : IMomentMap
{
    /// <summary>
    /// mean sqrt(s2 / (2 pi)) sqrt(a); variance (s2 / (2 pi)) (pi - a - arccos a + 2 a sqrt((1 - a) / (1 + a)));
    /// covariance (s2 / 4) (r + r arcsin(r a) (2 / pi) + s2 (2 / pi) (s2 (1 - r^2) + 1 + r^2) /
    /// ((s2 + 1) sqrt((s2 + 1)^2 - (r s2)^2))) - mean^2 (dslm-theory.md 2.3).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <exception cref="ArgumentException">The input mean is not 0: the formulas assume a zero-mean input.</exception>
    public SignalMoments Forward(SignalMoments input)
    {
        Assumptions.RequireZeroMean(input, "GeLU (dslm-theory.md 2.3)");
        double s2 = input.Variance, r = Assumptions.ClampCorrelation(input.Correlation);
        double a = s2 / (1 + s2);
        double mean = Math.Sqrt(s2) / Math.Sqrt(2 * Math.PI) * Math.Sqrt(a);
        double variance = s2 / (2 * Math.PI) * (Math.PI - a - Math.Acos(a) + 2 * a * Math.Sqrt((1 - a) / (1 + a)));
        double rs2 = r * s2;
        double covariance = s2 / 4 * (r + r * Math.Asin(r * a) * (2 / Math.PI)
                + s2 * (2 / Math.PI) * (s2 * (1 - r * r) + (1 + r * r)) / ((s2 + 1) * Math.Sqrt((s2 + 1) * (s2 + 1) - rs2 * rs2)))
            - mean * mean;
        return SignalMoments.FromCovariance(mean, variance, covariance);
    }

    /// <summary>
    /// The reviewer's equivalent form of the variance, (s2 / (2 pi)) (arccos(-a) + 2 s2 / ((1 + s2) sqrt(2 s2 + 1)) - a)
    /// (dslm-theory.md 2.3); kept beside the official one so the two can be checked against each other.
    /// </summary>
    /// <param name="inputVariance">s2 of the zero-mean input.</param>
    public static double VarianceReviewerForm(double inputVariance)
    {
        double s2 = inputVariance, a = s2 / (1 + s2);
        return s2 / (2 * Math.PI) * (Math.Acos(-a) + 2 * s2 / ((1 + s2) * Math.Sqrt(2 * s2 + 1)) - a);
    }

    /// <summary>
    /// Gradient variance g2 (1/2 + (1 / (2 pi)) (-arccos a + a (5 s2 + 3) / (1 + 2 s2)^1.5)) and covariance
    /// g2 rg (1/2 + (1 / (2 pi)) (-arccos(r a) + r a ((s2 + 1)(2 s2 + 3) - 2 (r s2)^2) / ((s2 + 1)^2 - (r s2)^2)^1.5))
    /// (dslm-theory.md 2.3).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <param name="outputGradient">Moments of the gradient at gelu(x).</param>
    /// <exception cref="ArgumentException">The input mean is not 0.</exception>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        Assumptions.RequireZeroMean(input, "GeLU (dslm-theory.md 2.3)");
        double s2 = input.Variance, r = Assumptions.ClampCorrelation(input.Correlation);
        double a = s2 / (1 + s2), ra = r * a, rs2 = r * s2;
        double g2 = outputGradient.Variance;
        double variance = g2 * (0.5 + 1 / (2 * Math.PI) * (-Math.Acos(a) + a * (5 * s2 + 3) / Math.Pow(1 + 2 * s2, 1.5)));
        double covariance = g2 * outputGradient.Correlation * (0.5 + 1 / (2 * Math.PI) * (-Math.Acos(ra)
            + ra * ((s2 + 1) * (2 * s2 + 3) - 2 * rs2 * rs2) / Math.Pow((s2 + 1) * (s2 + 1) - rs2 * rs2, 1.5)));
        return GradientMoments.FromCovariance(variance, covariance);
    }
}
