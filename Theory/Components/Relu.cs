namespace DeepScaleLM.Theory.Components;

/// <summary>
/// ReLU on a zero-mean Gaussian input (dslm-theory.md 2.2, `relu.py`), with the derived correlation forms of the
/// official `approximations.py`.
/// </summary>
public sealed record Relu : IMomentMap
{
    /// <summary>
    /// mean sqrt(s2 / (2 pi)), variance s2 (pi - 1) / (2 pi), covariance
    /// s2 (pi r + sqrt(1 - r^2) - r arccos r - 1) / (2 pi) (dslm-theory.md 2.2).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <exception cref="ArgumentException">The input mean is not 0: the formulas assume a zero-mean input.</exception>
    public SignalMoments Forward(SignalMoments input)
    {
        Assumptions.RequireZeroMean(input, "ReLU (dslm-theory.md 2.2)");
        double s2 = input.Variance, r = Assumptions.ClampCorrelation(input.Correlation);
        double covariance = s2 * (Math.PI * r + Math.Sqrt(1 - r * r) - r * Math.Acos(r) - 1) / (2 * Math.PI);
        return SignalMoments.FromCovariance(Math.Sqrt(s2 / (2 * Math.PI)), s2 * (Math.PI - 1) / (2 * Math.PI), covariance);
    }

    /// <summary>
    /// Gradient variance g2 / 2 and covariance (1/4 + arcsin(r) / (2 pi)) g2 rg: half the units pass the gradient, and
    /// two tokens pass it together with probability 1/4 + arcsin(r) / (2 pi) (dslm-theory.md 2.2).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <param name="outputGradient">Moments of the gradient at relu(x).</param>
    /// <exception cref="ArgumentException">The input mean is not 0.</exception>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        Assumptions.RequireZeroMean(input, "ReLU (dslm-theory.md 2.2)");
        double r = Assumptions.ClampCorrelation(input.Correlation);
        double g2 = outputGradient.Variance;
        return GradientMoments.FromCovariance(g2 / 2, (0.25 + Math.Asin(r) / (2 * Math.PI)) * g2 * outputGradient.Correlation);
    }

    /// <summary>
    /// E[relu(x_i) relu(x_j)] / E[relu(x)^2] = r + (sqrt(1 - r^2) - r arccos r) / pi: the correlation a following
    /// zero-mean linear layer sees, because its covariance uses mu^2 + cov (dslm-theory.md 2.2 derived forms, 2.1).
    /// </summary>
    /// <param name="correlation">r of the zero-mean ReLU input.</param>
    public static double SecondMomentCorrelation(double correlation)
    {
        double r = Assumptions.ClampCorrelation(correlation);
        return r + (Math.Sqrt(1 - r * r) - r * Math.Acos(r)) / Math.PI;
    }

    /// <summary>
    /// The official code's quadratic fit 1/pi + r/2 + (1/2 - 1/pi) r^2 of <see cref="SecondMomentCorrelation"/>
    /// (dslm-theory.md 2.2 derived forms).
    /// </summary>
    /// <param name="correlation">r of the zero-mean ReLU input.</param>
    public static double SecondMomentCorrelationApproximation(double correlation) =>
        1 / Math.PI + correlation / 2 + (0.5 - 1 / Math.PI) * correlation * correlation;

    /// <summary>
    /// The official code's fit 0.7 r + 0.3 r^2 of the centred output correlation cov_out / var_out
    /// (dslm-theory.md 2.2 derived forms).
    /// </summary>
    /// <param name="correlation">r of the zero-mean ReLU input.</param>
    public static double CorrelationApproximation(double correlation) => 0.7 * correlation + 0.3 * correlation * correlation;
}
