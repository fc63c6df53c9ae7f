namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// Value-SkipInit (He et al. 2023 as quoted by He &amp; Hofmann 2024, spa-theory.md 2.5): the attention matrix becomes
/// alpha I + beta A(X) with trainable scalars, initialised to alpha = 1 and beta = 0 so every attention layer starts as
/// the identity on tokens.
/// </summary>
/// <param name="Alpha">The weight of the identity.</param>
/// <param name="Beta">The weight of the attention matrix.</param>
public sealed record ValueSkipInit(double Alpha, double Beta)
{
    /// <summary>alpha = 1, beta = 0: the initial values (spa-theory.md 2.5).</summary>
    public static ValueSkipInit Initial { get; } = new(1, 0);

    /// <summary>alpha I + beta A, the mixed attention matrix (spa-theory.md 2.5, Eq. 4).</summary>
    /// <param name="attention">A, a square T x T attention matrix.</param>
    public double[,] Mix(double[,] attention)
    {
        int n = attention.GetLength(0);
        var mixed = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                mixed[i, j] = Beta * attention[i, j] + (i == j ? Alpha : 0);
        return mixed;
    }
}
