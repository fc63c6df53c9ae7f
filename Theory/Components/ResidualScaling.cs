namespace DeepScaleLM.Theory.Components;

/// <summary>
/// The residual combine out = lam x + beta f(x) (dslm-theory.md 2.9, `sigma_attn_v_out`): lam scales the skip, beta the
/// branch. Plain residuals are lam = beta = 1; DSLM keeps lam^2 + beta^2 = 1 (4.2); DeepNet scales the skip by
/// alpha &gt; 1 and leaves the branch at 1.
/// </summary>
/// <param name="Skip">lam, the factor on the skip path x.</param>
/// <param name="Branch">beta, the factor on the branch f(x).</param>
public sealed record ResidualScaling(double Skip, double Branch)
{
    /// <summary>Plain residuals x + f(x).</summary>
    public static ResidualScaling Plain { get; } = new(1, 1);

    /// <summary>
    /// lam = sqrt(1 - beta^2), beta = sqrt(beta^2): the DSLM constraint lam^2 + beta^2 = 1 (dslm-theory.md 4.2), which
    /// keeps a unit-variance stream at unit variance when the branch has unit variance (2.9).
    /// </summary>
    /// <param name="branchVariance">beta^2, in (0, 1].</param>
    /// <exception cref="ArgumentOutOfRangeException">beta^2 is outside (0, 1].</exception>
    public static ResidualScaling UnitVariance(double branchVariance) => branchVariance is > 0 and <= 1
        ? new ResidualScaling(Math.Sqrt(1 - branchVariance), Math.Sqrt(branchVariance))
        : throw new ArgumentOutOfRangeException(nameof(branchVariance), branchVariance,
            "beta^2 must lie in (0, 1] so that lam^2 = 1 - beta^2 is a variance.");

    /// <summary>
    /// The official code's defaults lam^2 = 0.995, beta^2 = 0.005, used for the 192-layer figures
    /// (dslm-theory.md 4.1, flags `--moment-control-lambda-beta`).
    /// </summary>
    public static ResidualScaling OfficialDeepScaleLM { get; } = UnitVariance(0.005);

    /// <summary>
    /// With the branch independent of x: mean lam mu_x + beta mu_f, variance lam^2 s2_x + beta^2 s2_f, correlation
    /// (lam^2 r_x s2_x + beta^2 r_f s2_f) / variance (dslm-theory.md 2.9; the code takes s2_f = 1).
    /// </summary>
    /// <param name="skip">Moments of x.</param>
    /// <param name="branch">Moments of f(x).</param>
    public SignalMoments Forward(SignalMoments skip, SignalMoments branch)
    {
        double skipSquared = Skip * Skip, branchSquared = Branch * Branch;
        return SignalMoments.FromCovariance(Skip * skip.Mean + Branch * branch.Mean,
            skipSquared * skip.Variance + branchSquared * branch.Variance,
            skipSquared * skip.Covariance + branchSquared * branch.Covariance);
    }

    /// <summary>The gradients the skip and the branch receive: lam and beta times the output's (dslm-theory.md 2.9).</summary>
    /// <param name="outputGradient">Moments of the gradient at the combine's output.</param>
    public (GradientMoments ToSkip, GradientMoments ToBranch) Backward(GradientMoments outputGradient) =>
        (outputGradient.Scale(Skip), outputGradient.Scale(Branch));
}
