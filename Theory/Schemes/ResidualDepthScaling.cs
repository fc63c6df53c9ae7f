using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>What the depth N in beta^2 = k / N^alpha counts (dslm-theory.md 4.2: not confirmed from the paper).</summary>
public enum DepthUnit
{
    /// <summary>N = the number of blocks (the MeerKAT design doc and the vision DSLM module).</summary>
    Blocks,

    /// <summary>N = the number of residual sublayers, two per block.</summary>
    Sublayers,
}

/// <summary>
/// DSLM residual scaling from depth: beta^2 = k / N^alpha, lam^2 = 1 - beta^2 (dslm-theory.md 4.2). k, alpha and what N
/// counts are configuration, because the paper's convention could not be confirmed; unit variance holds for any choice
/// (2.9), only the growth of r changes (5.2). The defaults k = 2, alpha = 1, N = sublayers are the only choice that
/// agrees with both pieces of evidence: the official 192-layer run's beta^2 = 0.005 (2 / 384 = 0.0052, the primary
/// source) and k = 2, which both third-party ports attribute to the paper.
/// </summary>
/// <param name="K">k, the total branch share.</param>
/// <param name="Exponent">alpha, the depth exponent.</param>
/// <param name="Unit">What N counts.</param>
public sealed record ResidualDepthScaling(double K = 2, double Exponent = 1, DepthUnit Unit = DepthUnit.Sublayers)
{
    /// <summary>N for a model of the given number of blocks.</summary>
    /// <param name="layers">The number of blocks.</param>
    public int Depth(int layers) => Unit == DepthUnit.Blocks ? layers : 2 * layers;

    /// <summary>beta^2 = k / N^alpha (dslm-theory.md 4.2).</summary>
    /// <param name="layers">The number of blocks.</param>
    public double BranchVariance(int layers) => K / Math.Pow(Depth(layers), Exponent);

    /// <summary>lam = sqrt(1 - beta^2), beta = sqrt(beta^2) for a model of the given depth (dslm-theory.md 4.2).</summary>
    /// <param name="layers">The number of blocks.</param>
    /// <exception cref="ArgumentOutOfRangeException">k / N^alpha exceeds 1 (too shallow for this k).</exception>
    public ResidualScaling For(int layers) => ResidualScaling.UnitVariance(BranchVariance(layers));
}
