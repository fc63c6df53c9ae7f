namespace DeepScaleLM.Theory.Components;

/// <summary>
/// The TAT-shaped activation phi(x) = output_scale * leaky_relu(x, a) on a zero-mean Gaussian input (spa-theory.md 3):
/// positively homogeneous, so E[phi(x) phi(y)] = s2 C(c) with C the leaky-ReLU C-map of <see cref="LeakyReluKernel"/>,
/// and output_scale = sqrt(2 / (1 + a^2)) keeps E[phi(x)^2] = s2 (Q(1) = 1).
/// </summary>
/// <param name="NegativeSlope">a, the slope for x &lt; 0 (a = 0 and scale sqrt 2 is He-scaled ReLU).</param>
public sealed record ScaledLeakyRelu(double NegativeSlope) : IMomentMap
{
    private double Scale => LeakyReluKernel.OutputScale(NegativeSlope);

    /// <summary>
    /// mean output_scale (1 - a) sqrt(s2 / (2 pi)); variance s2 - mean^2; covariance s2 C(r) - mean^2 (the C-map is a map
    /// of second moments; spa-theory.md 3).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    public SignalMoments Forward(SignalMoments input)
    {
        Assumptions.RequireZeroMean(input, "Scaled leaky ReLU (spa-theory.md 3)");
        double s2 = input.Variance;
        double mean = Scale * (1 - NegativeSlope) * Math.Sqrt(s2 / (2 * Math.PI));
        return SignalMoments.FromCovariance(mean, s2 - mean * mean,
            s2 * LeakyReluKernel.CorrelationMap(input.Correlation, NegativeSlope) - mean * mean);
    }

    /// <summary>
    /// phi'(x) = output_scale (1 for x &gt; 0, a otherwise): gradient variance g2 output_scale^2 (1 + a^2) / 2 = g2, and
    /// covariance g2 rg output_scale^2 [(1 + a^2) P(same sign) / 2 + 2 a P(opposite signs) / 2] with
    /// P(same sign) / 2 = 1/4 + arcsin(r) / (2 pi) (as ReLU's, dslm-theory.md 2.2).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <param name="outputGradient">Moments of the gradient at phi(x).</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        Assumptions.RequireZeroMean(input, "Scaled leaky ReLU (spa-theory.md 3)");
        double a = NegativeSlope, scale2 = Scale * Scale, g2 = outputGradient.Variance;
        double same = 0.25 + Math.Asin(Assumptions.ClampCorrelation(input.Correlation)) / (2 * Math.PI);
        double both = scale2 * ((1 + a * a) * same + 2 * a * (0.5 - same));
        return GradientMoments.FromCovariance(g2 * scale2 * (1 + a * a) / 2, both * g2 * outputGradient.Correlation);
    }
}
