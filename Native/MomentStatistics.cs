namespace DeepScaleLM.Native;

/// <summary>
/// Moments of an activation tensor [batch, tokens, channels], as the DSLM simulations measure them
/// (dslm-theory.md section 1): the mean and variance of all elements, and the mean cross-token correlation,
/// i.e. the average off-diagonal entry of the token-by-token covariance (samples = batch x channels, each
/// token centred on its own mean) divided by the average diagonal entry.
/// </summary>
/// <param name="Mean">Mean of all elements.</param>
/// <param name="Variance">Variance of all elements (population, divided by the element count).</param>
/// <param name="Correlation">Mean off-diagonal token covariance / mean token variance; 0 where that is 0/0 (a single
/// token, or no token varying over its samples).</param>
public readonly record struct MomentStatistics(double Mean, double Variance, double Correlation);
