namespace DeepScaleLM.Theory;

/// <summary>
/// Moments of one hidden coordinate of a signal at initialisation (dslm-theory.md 1): its mean and variance, shared by
/// every token, and the cross-token correlation r = Cov(x_i, x_j) / Var(x) of two different tokens i != j.
/// Expectations are over the random weights and the random inputs together.
/// </summary>
/// <param name="Mean">mu, the mean of one coordinate.</param>
/// <param name="Variance">s2, the variance of one coordinate.</param>
/// <param name="Correlation">r, the correlation of the same coordinate at two different tokens.</param>
public readonly record struct SignalMoments(double Mean, double Variance, double Correlation)
{
    /// <summary>The cross-token covariance r * s2 (the "cov" of dslm-theory.md 1).</summary>
    public double Covariance => Correlation * Variance;

    /// <summary>E[x^2] = s2 + mu^2, what a following zero-mean linear layer sees (dslm-theory.md 2.1).</summary>
    public double SecondMoment => Variance + Mean * Mean;

    /// <summary>Moments given the cross-token covariance instead of the correlation.</summary>
    /// <param name="mean">The mean of one coordinate.</param>
    /// <param name="variance">The variance of one coordinate (must be non-zero for the correlation to exist).</param>
    /// <param name="covariance">The covariance of one coordinate between two different tokens.</param>
    public static SignalMoments FromCovariance(double mean, double variance, double covariance) =>
        new(mean, variance, covariance / variance);
}

/// <summary>
/// Moments of the gradient of one hidden coordinate (dslm-theory.md 1): its variance g2 and its cross-token
/// correlation rg. Gradients are taken to have zero mean, as the official formulas do.
/// </summary>
/// <param name="Variance">g2, the variance of one coordinate of the gradient.</param>
/// <param name="Correlation">rg, the correlation of the gradient of one coordinate at two different tokens.</param>
public readonly record struct GradientMoments(double Variance, double Correlation)
{
    /// <summary>The cross-token covariance rg * g2.</summary>
    public double Covariance => Correlation * Variance;

    /// <summary>Moments given the cross-token covariance instead of the correlation.</summary>
    /// <param name="variance">The variance of one coordinate of the gradient (non-zero).</param>
    /// <param name="covariance">The covariance of one gradient coordinate between two different tokens.</param>
    public static GradientMoments FromCovariance(double variance, double covariance) =>
        new(variance, covariance / variance);

    /// <summary>
    /// The gradient of a tensor read by two paths: the two contributions are uncorrelated at initialisation (each passes
    /// through independent zero-mean weights, or one of them does), so variances and covariances add.
    /// </summary>
    /// <param name="left">The gradient arriving through one path.</param>
    /// <param name="right">The gradient arriving through the other path.</param>
    public static GradientMoments operator +(GradientMoments left, GradientMoments right) =>
        FromCovariance(left.Variance + right.Variance, left.Covariance + right.Covariance);

    /// <summary>The gradient multiplied by a constant c: variance times c^2, correlation unchanged.</summary>
    /// <param name="factor">The constant c.</param>
    public GradientMoments Scale(double factor) => this with { Variance = Variance * factor * factor };
}

/// <summary>
/// How one component maps moments: forward from its input to its output, and backward from the gradient at its output
/// to the gradient at its input. Backward takes the forward input too, because several formulas depend on it
/// (ReLU's gradient covariance on r, LayerNorm's gradient on s2; dslm-theory.md 2.2, 2.4).
/// </summary>
public interface IMomentMap
{
    /// <summary>The moments of the component's output for an input with the given moments.</summary>
    /// <param name="input">Moments of the component's input.</param>
    SignalMoments Forward(SignalMoments input);

    /// <summary>The moments of the gradient at the component's input.</summary>
    /// <param name="input">Moments of the component's forward input.</param>
    /// <param name="outputGradient">Moments of the gradient arriving at the component's output.</param>
    GradientMoments Backward(SignalMoments input, GradientMoments outputGradient);
}
