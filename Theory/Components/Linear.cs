namespace DeepScaleLM.Theory.Components;

/// <summary>
/// A linear layer y = x W with W ~ N(0, sw2) of shape [fan-in, fan-out] and no bias, as the official simulation
/// models it (dslm-theory.md 2.1, `linear.py`).
/// </summary>
/// <param name="FanIn">d_in, the number of inputs summed into one output.</param>
/// <param name="FanOut">d_out, the number of outputs one input feeds.</param>
/// <param name="WeightVariance">sw2, the variance of every weight.</param>
public sealed record Linear(int FanIn, int FanOut, double WeightVariance) : IMomentMap
{
    /// <summary>
    /// mean 0, variance d_in (s2 + mu^2) sw2, covariance d_in sw2 (mu^2 + r s2), so the correlation is
    /// (mu^2 + r s2) / (mu^2 + s2): a shared input mean correlates the tokens (dslm-theory.md 2.1).
    /// </summary>
    /// <param name="input">Moments of x.</param>
    public SignalMoments Forward(SignalMoments input)
    {
        double meanSquared = input.Mean * input.Mean;
        return new SignalMoments(0, FanIn * input.SecondMoment * WeightVariance,
            (meanSquared + input.Covariance) / input.SecondMoment);
    }

    /// <summary>Gradient variance d_out g2 sw2; the gradient correlation is unchanged (dslm-theory.md 2.1).</summary>
    /// <param name="input">Moments of x (not needed: the backward pass sees only W).</param>
    /// <param name="outputGradient">Moments of the gradient at y.</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient) =>
        outputGradient with { Variance = FanOut * outputGradient.Variance * WeightVariance };
}
