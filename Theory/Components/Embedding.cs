namespace DeepScaleLM.Theory.Components;

/// <summary>
/// Embedding moments (dslm-theory.md 2.8): several summed tables, each N(0, table std^2), then the embedding dropout.
/// The paper's own embedding formula was not available; this holds the Zipf collision probability the reviewers
/// describe and the official code's hard-coded input correlation.
/// </summary>
public static class Embedding
{
    /// <summary>
    /// r0 = 0.221, the token correlation the official code hard-codes before the embedding dropout
    /// (dslm-theory.md 2.8; its origin could not be traced, and it is not the Zipf formula).
    /// </summary>
    public const double OfficialTokenCorrelation = 0.221;

    /// <summary>
    /// The probability that two tokens drawn from Zipf's law p_i ~ 1 / i^s over |V| tokens are the same,
    /// sum_i p_i^2 = (sum 1/i^(2s)) / (sum 1/i^s)^2 (dslm-theory.md 2.8, reviewer 3, for s = 1): the token table's
    /// correlation.
    /// </summary>
    /// <param name="vocabularySize">|V|.</param>
    /// <param name="exponent">s; 1 for the classic law.</param>
    public static double ZipfCollisionProbability(int vocabularySize, double exponent = 1)
    {
        double sum = 0, squares = 0;
        // Smallest terms first, so the sums lose no digits to the large early terms.
        for (int i = vocabularySize; i >= 1; i--)
        {
            double p = Math.Pow(i, -exponent);
            sum += p;
            squares += p * p;
        }
        return squares / (sum * sum);
    }

    /// <summary>
    /// The reviewer's large-|V| approximation zeta(2) / (ln|V| + 0.5772)^2 of <see cref="ZipfCollisionProbability"/>
    /// ("without the constant, the approximation is pretty bad"; dslm-theory.md 2.8).
    /// </summary>
    /// <param name="vocabularySize">|V|.</param>
    public static double ZipfCollisionApproximation(int vocabularySize)
    {
        const double EulerMascheroni = 0.57721566490153286;
        double harmonic = Math.Log(vocabularySize) + EulerMascheroni;
        return Math.PI * Math.PI / 6 / (harmonic * harmonic);
    }

    /// <summary>
    /// The embedding output: <paramref name="tableCount"/> independent zero-mean tables summed (variance tables x std^2,
    /// correlation as given), then the embedding dropout p (2.5), which multiplies r by (1 - p); with DSLM's std
    /// sqrt((1 - p) / tables) the variance is 1 and r = 0.221 (1 - p) (dslm-theory.md 2.8, 4.1).
    /// </summary>
    /// <param name="tableCount">How many tables are summed (3 in the official BERT, 2 for a token + position decoder).</param>
    /// <param name="tableStd">The init std of every table.</param>
    /// <param name="dropout">p, the embedding dropout.</param>
    /// <param name="tokenCorrelation">The correlation of the summed tables between two tokens.</param>
    public static SignalMoments Output(int tableCount, double tableStd, double dropout, double tokenCorrelation) =>
        new Dropout(dropout).Forward(new SignalMoments(0, tableCount * tableStd * tableStd, tokenCorrelation));
}
