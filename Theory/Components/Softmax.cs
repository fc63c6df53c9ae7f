namespace DeepScaleLM.Theory.Components;

/// <summary>Which of the official softmax variance formulas to use (dslm-theory.md 2.6).</summary>
public enum SoftmaxApproximation
{
    /// <summary>"V1": variance (exp((1 - r) s2) - 1) / L^2.</summary>
    Approximate,

    /// <summary>"V2": the full form with e = exp((1 - r) s2 L / (L - 1)).</summary>
    Full,
}

/// <summary>
/// Softmax over a length-L vector whose entries have mean 0, variance s2 and pairwise correlation r, e.g. one row of
/// attention logits (dslm-theory.md 2.6, `softmax.py`). Checked by the authors for s &lt;= 1; V2 and both backward
/// forms run 5-7% high at s = 1, r = 0, L = 300. The incoming gradient is taken i.i.d. across entries, as the official
/// simulation draws it.
/// </summary>
public static class Softmax
{
    /// <summary>Every output has mean 1/L: the L outputs sum to 1 and are exchangeable (dslm-theory.md 2.6).</summary>
    /// <param name="length">L, the number of entries.</param>
    public static double OutputMean(int length) => 1.0 / length;

    /// <summary>
    /// The output variance: V1 (exp((1 - r) s2) - 1) / L^2, or V2 (e - 1) e^2 / ((L - 1) exp((1 - r) s2) + 1)^2 with
    /// e = exp((1 - r) s2 L / (L - 1)) (dslm-theory.md 2.6).
    /// </summary>
    /// <param name="logits">Moments of the entries; the mean must be 0.</param>
    /// <param name="length">L, the number of entries.</param>
    /// <param name="approximation">Which official formula.</param>
    /// <exception cref="ArgumentException">The mean of the entries is not 0.</exception>
    public static double OutputVariance(SignalMoments logits, int length, SoftmaxApproximation approximation)
    {
        Assumptions.RequireZeroMean(logits, "Softmax (dslm-theory.md 2.6)");
        double spread = (1 - logits.Correlation) * logits.Variance, l = length;
        if (approximation == SoftmaxApproximation.Approximate)
            return (Math.Exp(spread) - 1) / (l * l);
        double e = Math.Exp(spread * l / (l - 1));
        double denominator = (l - 1) * Math.Exp(spread) + 1;
        return (e - 1) * e * e / (denominator * denominator);
    }

    /// <summary>
    /// The variance of the gradient at the logits: V1 exp((1 - r) s2) g2 / L^2 and V2 g2 (V2 output variance + 1 / L^2)
    /// (dslm-theory.md 2.6). V1's form is g2 (V1 output variance + 1 / L^2) too, so both share one expression.
    /// </summary>
    /// <param name="logits">Moments of the entries; the mean must be 0.</param>
    /// <param name="length">L, the number of entries.</param>
    /// <param name="outputGradientVariance">g2, the variance of the i.i.d. gradient at the softmax output.</param>
    /// <param name="approximation">Which official formula.</param>
    /// <exception cref="ArgumentException">The mean of the entries is not 0.</exception>
    public static double GradientVariance(SignalMoments logits, int length, double outputGradientVariance, SoftmaxApproximation approximation)
    {
        double l = length;
        return outputGradientVariance * (OutputVariance(logits, length, approximation) + 1 / (l * l));
    }
}
