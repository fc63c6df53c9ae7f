namespace DeepScaleLM.Theory.Components;

/// <summary>Inverted dropout, kept values scaled by 1 / (1 - p) (dslm-theory.md 2.5, `dropout.py`).</summary>
/// <param name="Probability">p, the probability of dropping a value; 0 &lt;= p &lt; 1.</param>
public sealed record Dropout(double Probability) : IMomentMap
{
    /// <summary>The drop probability p, checked to lie in [0, 1).</summary>
    public double Probability { get; } = Probability is >= 0 and < 1
        ? Probability
        : throw new ArgumentOutOfRangeException(nameof(Probability), Probability, "Dropout probability must lie in [0, 1).");

    /// <summary>
    /// mean mu, variance (s2 + p mu^2) / (1 - p), covariance r s2 unchanged: the masks of two tokens are independent,
    /// so only the variance grows (dslm-theory.md 2.5).
    /// </summary>
    /// <param name="input">Moments of x.</param>
    public SignalMoments Forward(SignalMoments input) => SignalMoments.FromCovariance(
        input.Mean, (input.Variance + Probability * input.Mean * input.Mean) / (1 - Probability), input.Covariance);

    /// <summary>Gradient variance g2 / (1 - p), covariance g2 rg unchanged (dslm-theory.md 2.5).</summary>
    /// <param name="input">Moments of x (not needed).</param>
    /// <param name="outputGradient">Moments of the gradient at dropout(x).</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient) =>
        GradientMoments.FromCovariance(outputGradient.Variance / (1 - Probability), outputGradient.Covariance);
}
