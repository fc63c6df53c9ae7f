namespace DeepScaleLM.Theory.Components;

/// <summary>
/// LayerNorm over the hidden dimension without affine parameters, as at initialisation (gamma 1, beta 0), for any
/// input mean (dslm-theory.md 2.4, `layernorm.py`).
/// </summary>
/// <param name="Width">d, the number of hidden coordinates normalised together.</param>
public sealed record LayerNorm(int Width) : IMomentMap
{
    /// <summary>
    /// The fluctuation of the input's per-token squared norm |x_t|^2 / d, as a fraction of a Gaussian input's
    /// (relative variance 2 / d): 1 for Gaussian inputs (the formula's setting), 0 for an input whose every token
    /// already has the same norm (a LayerNorm output). The 1/d shrinkage of the correlation comes from dividing by a
    /// random norm (hence the exact form's 1 - r^2: identical tokens share it), so it scales with this fraction.
    /// Post-LN's skip path is a LayerNorm output, so its next LayerNorm shrinks r far less than 1/d: with the Gaussian
    /// factor compounded over 2N sublayers, the depth recursion's Post-LN r fell with width (0.14 at d = 64, 0.42 at
    /// 512, 96 blocks) where the real models measure 0.45-0.53 at every width. Not modelled, at the same small order:
    /// centring the fresh branch of such a stream raises r by about beta^2 r / d (tests/TheoryMonteCarloTests.cs).
    /// </summary>
    public double NormFluctuation { get; init; } = 1;

    /// <summary>
    /// mean 0, variance 1, cross-token correlation r (1 - f/d) with f = <see cref="NormFluctuation"/>: for Gaussian
    /// inputs the official approximation r (1 - 1/d), within 1% of the exact r (1 - (1 - r^2) / (2 (d - 1))) for
    /// d &gt;= 100 (dslm-theory.md 2.4).
    /// </summary>
    /// <param name="input">Moments of x.</param>
    public SignalMoments Forward(SignalMoments input) => new(0, 1, input.Correlation * (1 - NormFluctuation / Width));

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
