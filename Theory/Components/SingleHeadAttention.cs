namespace DeepScaleLM.Theory.Components;

/// <summary>
/// One head of scaled dot-product attention with a value projection and no output projection (dslm-theory.md 2.7,
/// `SHA.py`): Q = x W_Q, K = x W_K with W ~ N(0, sq2), V = x W_V with W_V ~ N(0, sv2), all d x dk; scores
/// Q K^T / sqrt(dk); softmax; dropout p on the probabilities; output P V. Checked by the authors for small Q/K
/// (sq sqrt(d) &lt;= 0.6) and L &gt;= 300; the backward pass goes through V only.
/// </summary>
/// <param name="ModelWidth">d, the width of the input x.</param>
/// <param name="HeadWidth">dk, the width of Q, K and V.</param>
/// <param name="QueryKeyVariance">sq2, the variance of every weight of W_Q and of W_K (the code's sigma_qk).</param>
/// <param name="ValueVariance">sv2, the variance of every weight of W_V.</param>
/// <param name="SequenceLength">L, the number of tokens attended over.</param>
/// <param name="Dropout">p, the dropout probability on the attention probabilities.</param>
public sealed record SingleHeadAttention(int ModelWidth, int HeadWidth, double QueryKeyVariance, double ValueVariance,
    int SequenceLength, double Dropout) : IMomentMap
{
    /// <summary>
    /// mean 0; with sw = d s2 sq2^2 and dv = d sv2 (the code's names), variance
    /// (((1 - r)^2 (L - 1) sw s2^2 + exp((1 - r) d sw s2) / (1 - p) (4 (1 - r)^2 sw s2^2 + (1 - r) s2)) / L + r s2) dv
    /// and covariance (r s2 + (2 (1 - r)^2 d sq2^2 s2^3 + (1 - r) s2) / L) dv (dslm-theory.md 2.7). As sq2 -&gt; 0 and
    /// L grows both tend to d sv2 r s2: the output correlation tends to 1 (rank collapse).
    /// </summary>
    /// <param name="input">Moments of x; the mean must be 0.</param>
    /// <exception cref="ArgumentException">The input mean is not 0.</exception>
    public SignalMoments Forward(SignalMoments input)
    {
        Assumptions.RequireZeroMean(input, "Single-head attention (dslm-theory.md 2.7)");
        double s2 = input.Variance, r = input.Correlation, p = Dropout, l = SequenceLength, d = ModelWidth;
        double sw = d * s2 * QueryKeyVariance * QueryKeyVariance;
        double dv = d * ValueVariance;
        double oneMinusR = 1 - r;
        double variance = ((oneMinusR * oneMinusR * (l - 1) * sw * s2 * s2
                + Math.Exp(oneMinusR * d * sw * s2) / (1 - p) * (4 * oneMinusR * oneMinusR * sw * s2 * s2 + oneMinusR * s2)) / l
            + r * s2) * dv;
        double covariance = (r * s2
            + (2 * oneMinusR * oneMinusR * d * QueryKeyVariance * QueryKeyVariance * s2 * s2 * s2 + oneMinusR * s2) / l) * dv;
        return SignalMoments.FromCovariance(0, variance, covariance);
    }

    /// <summary>
    /// Through V only: gradient variance g2 dk sv2 (1 + (L - 1) rg (1 - p)) / (L (1 - p)) and covariance
    /// g2 dk sv2 (1 + (L - 1) rg) / L (dslm-theory.md 2.7). Assumes near-uniform attention; the reference measures 12%
    /// more at r = 0, sq sqrt(d) = 0.6, p = 2/3.
    /// </summary>
    /// <param name="input">Moments of x (not needed: the Q/K path is ignored).</param>
    /// <param name="outputGradient">Moments of the gradient at the head's output.</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient)
    {
        double p = Dropout, l = SequenceLength, rg = outputGradient.Correlation;
        double gain = outputGradient.Variance * HeadWidth * ValueVariance;
        return GradientMoments.FromCovariance(gain * (1 + (l - 1) * rg * (1 - p)) / (l * (1 - p)), gain * (1 + (l - 1) * rg) / l);
    }
}
