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
    /// The per-token squared-norm fluctuation of lam x + beta f as a fraction of a Gaussian's (see
    /// <see cref="LayerNorm.NormFluctuation"/>), for x of variance vx and fraction fx and an independent branch output f
    /// of variance vf that is Gaussian-like (a fresh random projection): |s|^2/d = lam^2 |x|^2/d + beta^2 |f|^2/d +
    /// 2 lam beta x.f/d, whose terms have variances lam^4 vx^2 2 fx/d, beta^4 vf^2 2/d and 4 lam^2 beta^2 vx vf/d.
    /// A Gaussian x gives 1 again; a LayerNorm output (fx = 0), Post-LN's skip, gives about 2 beta^2.
    /// </summary>
    /// <param name="skipVariance">vx, the mean variance of x.</param>
    /// <param name="skipFluctuation">fx, x's norm fluctuation (1: Gaussian, 0: every token of one norm).</param>
    /// <param name="branchVariance">vf, the mean variance of f.</param>
    public double NormFluctuation(double skipVariance, double skipFluctuation, double branchVariance)
    {
        double skip = Skip * Skip * skipVariance, branch = Branch * Branch * branchVariance, total = skip + branch;
        return total == 0 ? 1 : (skip * skip * skipFluctuation + branch * branch + 2 * skip * branch) / (total * total);
    }

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
