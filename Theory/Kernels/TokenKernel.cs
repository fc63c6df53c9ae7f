namespace DeepScaleLM.Theory.Kernels;

/// <summary>
/// The token kernel of one hidden coordinate at initialisation: K[t, u] = E[x_t x_u], the second moment of the same
/// coordinate at token positions t and u (T x T, symmetric), averaged over weights and inputs. It generalises
/// <see cref="SignalMoments"/> (dslm-theory.md 1), which assumes every token has the same variance and every pair the
/// same correlation, to per-position variances and per-pair correlations: what causal attention creates (position t
/// averages t + 1 tokens, open-problems.md 2) and what E-SPA shapes (Sigma_l of spa-theory.md 2.1). A kernel whose
/// tokens are exchangeable (one diagonal value, one off-diagonal value) is stored as those two numbers, so the
/// bidirectional recursion costs the same as the scalar one; every map keeps that form when it can.
/// The same type holds gradient kernels G[t, u] = E[g_t g_u].
/// </summary>
public sealed class TokenKernel
{
    private readonly double[]? _dense; // [T * T], row-major, symmetric; null when exchangeable
    private readonly double _diagonal, _offDiagonal;

    private TokenKernel(int tokens, double[]? dense, double diagonal, double offDiagonal)
    {
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "A kernel needs at least one token.");
        Tokens = tokens;
        _dense = dense;
        _diagonal = diagonal;
        _offDiagonal = offDiagonal;
    }

    /// <summary>T, the number of token positions.</summary>
    public int Tokens { get; }

    /// <summary>True when every position has the same second moment and every pair the same cross moment.</summary>
    public bool IsExchangeable => _dense is null;

    /// <summary>An exchangeable kernel: variance on the diagonal, covariance everywhere else.</summary>
    /// <param name="tokens">T.</param>
    /// <param name="variance">E[x_t^2] for every t.</param>
    /// <param name="covariance">E[x_t x_u] for every t != u.</param>
    public static TokenKernel Exchangeable(int tokens, double variance, double covariance) => new(tokens, null, variance, covariance);

    /// <summary>A kernel from its zero-mean moments (mean must be 0: the kernel holds second moments).</summary>
    /// <param name="tokens">T.</param>
    /// <param name="moments">Variance and correlation shared by every position and pair.</param>
    public static TokenKernel FromMoments(int tokens, SignalMoments moments) =>
        Exchangeable(tokens, moments.SecondMoment, moments.Covariance + moments.Mean * moments.Mean);

    /// <summary>A dense kernel from a full symmetric matrix (copied; only the lower triangle is read).</summary>
    /// <param name="matrix">T x T.</param>
    public static TokenKernel FromMatrix(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n) throw new ArgumentException($"A kernel is square; got {n} x {matrix.GetLength(1)}.", nameof(matrix));
        var dense = new double[n * n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u <= t; u++)
                dense[t * n + u] = dense[u * n + t] = matrix[t, u];
        return new TokenKernel(n, dense, 0, 0);
    }

    /// <summary>A dense kernel that takes ownership of a row-major symmetric buffer.</summary>
    internal static TokenKernel FromDense(int tokens, double[] dense) => new(tokens, dense, 0, 0);

    /// <summary>K[t, u].</summary>
    public double this[int t, int u] => _dense is null ? (t == u ? _diagonal : _offDiagonal) : _dense[t * Tokens + u];

    /// <summary>The per-position second moments K[t, t] (the per-position variance of a zero-mean signal).</summary>
    public double[] Diagonal()
    {
        var diagonal = new double[Tokens];
        for (int t = 0; t < Tokens; t++) diagonal[t] = this[t, t];
        return diagonal;
    }

    /// <summary>The full matrix, T x T.</summary>
    public double[,] ToMatrix()
    {
        var matrix = new double[Tokens, Tokens];
        for (int t = 0; t < Tokens; t++)
            for (int u = 0; u < Tokens; u++)
                matrix[t, u] = this[t, u];
        return matrix;
    }

    /// <summary>The mean of K[t, t] over positions.</summary>
    public double MeanVariance
    {
        get
        {
            if (_dense is null) return _diagonal;
            double sum = 0;
            for (int t = 0; t < Tokens; t++) sum += _dense[t * Tokens + t];
            return sum / Tokens;
        }
    }

    /// <summary>The mean of K[t, u] over ordered pairs t != u (0 for a single token).</summary>
    public double MeanCovariance
    {
        get
        {
            if (Tokens == 1) return 0;
            if (_dense is null) return _offDiagonal;
            double total = 0;
            foreach (double value in _dense) total += value;
            double offDiagonal = total - MeanVariance * Tokens;
            return offDiagonal / ((double)Tokens * (Tokens - 1));
        }
    }

    /// <summary>
    /// Position-averaged moments as the authors measure them (dslm-theory.md 1): mean 0, the mean variance, and r = the
    /// mean off-diagonal covariance over the mean variance.
    /// </summary>
    public SignalMoments Summary()
    {
        double variance = MeanVariance;
        return new SignalMoments(0, variance, variance == 0 ? 0 : MeanCovariance / variance);
    }

    /// <summary>The same summary read as gradient moments.</summary>
    public GradientMoments GradientSummary()
    {
        var summary = Summary();
        return new GradientMoments(summary.Variance, summary.Correlation);
    }

    /// <summary>
    /// An entry-wise map: new K[t, u] = entry(K[t, t], K[u, u], K[t, u], t == u), evaluated once per distinct entry
    /// (twice for an exchangeable kernel, T (T + 1) / 2 times for a dense one).
    /// </summary>
    /// <param name="entry">The map of one entry from the two variances, the entry and whether it is on the diagonal.</param>
    public TokenKernel Map(Func<double, double, double, bool, double> entry)
    {
        if (_dense is null)
            return Exchangeable(Tokens, entry(_diagonal, _diagonal, _diagonal, true), entry(_diagonal, _diagonal, _offDiagonal, false));
        int n = Tokens;
        var result = new double[n * n];
        for (int t = 0; t < n; t++)
        {
            double tt = _dense[t * n + t];
            for (int u = 0; u <= t; u++)
                result[t * n + u] = result[u * n + t] = entry(tt, _dense[u * n + u], _dense[t * n + u], t == u);
        }
        return FromDense(n, result);
    }

    /// <summary>An entry-wise map of two kernels of the same size: new K[t, u] = entry(a[t, u], b[t, u]).</summary>
    /// <param name="a">The first kernel.</param>
    /// <param name="b">The second kernel.</param>
    /// <param name="entry">The map of one pair of entries.</param>
    /// <exception cref="ArgumentException">The kernels have different sizes.</exception>
    public static TokenKernel Combine(TokenKernel a, TokenKernel b, Func<double, double, double> entry)
    {
        if (a.Tokens != b.Tokens) throw new ArgumentException($"Kernels of {a.Tokens} and {b.Tokens} tokens cannot be combined.", nameof(b));
        if (a._dense is null && b._dense is null)
            return Exchangeable(a.Tokens, entry(a._diagonal, b._diagonal), entry(a._offDiagonal, b._offDiagonal));
        int n = a.Tokens;
        var result = new double[n * n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u <= t; u++)
                result[t * n + u] = result[u * n + t] = entry(a[t, u], b[t, u]);
        return FromDense(n, result);
    }

    /// <summary>The dense row-major copy of the kernel (a new buffer).</summary>
    internal double[] DenseCopy()
    {
        if (_dense is not null) return (double[])_dense.Clone();
        int n = Tokens;
        var dense = new double[n * n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
                dense[t * n + u] = t == u ? _diagonal : _offDiagonal;
        return dense;
    }
}
