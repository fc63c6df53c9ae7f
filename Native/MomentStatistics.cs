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
public readonly record struct MomentStatistics(double Mean, double Variance, double Correlation)
{
    /// <summary>
    /// The statistics from the two float64 passes every backend runs (see CpuBackend.MomentsCore for the algebra):
    /// the token means m_t, and (pairs[2 i], pairs[2 i + 1]) = the partial sums Q_i = sum (sum_t c_t)^2 and
    /// D_i = sum sum_t c_t^2 of the centred values c_t = x_t - m_t, added in index order.
    /// </summary>
    internal static MomentStatistics FromCentredSums(ReadOnlySpan<double> means, ReadOnlySpan<double> pairs, int batch, int channels)
    {
        int tokens = means.Length;
        double samples = (double)batch * channels, count = samples * tokens;
        double mean = 0;
        foreach (double m in means) mean += m;
        mean /= tokens;
        double q = 0, d = 0, spread = 0;
        for (int i = 0; i < pairs.Length / 2; i++)
        {
            q += pairs[2 * i];
            d += pairs[2 * i + 1];
        }
        foreach (double m in means) spread += (m - mean) * (m - mean);
        // With one token, or tokens constant over their samples, the ratio is 0/0: report no correlation.
        double correlation = tokens > 1 && d > 0 ? (q - d) / ((tokens - 1) * d) : 0;
        return new MomentStatistics(mean, (d + samples * spread) / count, correlation);
    }
}
