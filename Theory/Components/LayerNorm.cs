namespace DeepScaleLM.Theory.Components;

/// <summary>
/// LayerNorm over the hidden dimension without affine parameters, as at initialisation (gamma 1, beta 0), for any
/// input mean (dslm-theory.md 2.4, `layernorm.py`).
/// </summary>
/// <param name="Width">d, the number of hidden coordinates normalised together.</param>
public sealed record LayerNorm(int Width) : IMomentMap
{
    /// <summary>
    /// mean 0, variance 1, cross-token correlation r (1 - 1/d): the official approximation, within 1% of the exact
    /// r (1 - (1 - r^2) / (2 (d - 1))) for d &gt;= 100 (dslm-theory.md 2.4).
    /// </summary>
    /// <param name="input">Moments of x.</param>
    public SignalMoments Forward(SignalMoments input) => new(0, 1, input.Correlation * (1 - 1.0 / Width));

    /// <summary>The covariance -1 / (d - 1) of two hidden coordinates of the same token (dslm-theory.md 2.4).</summary>
    public double CrossFeatureCovariance => -1.0 / (Width - 1);

    /// <summary>
    /// Gradient variance g2 / s2 and covariance g2 rg / s2: the division by the input variance is the term that sets
    /// the Pre-LN and Post-LN depth behaviour (dslm-theory.md 2.4, 3).
    /// </summary>
    /// <param name="input">Moments of x; its variance s2 scales the gradient.</param>
    /// <param name="outputGradient">Moments of the gradient at LN(x).</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient) =>
        outputGradient with { Variance = outputGradient.Variance / input.Variance };
}
