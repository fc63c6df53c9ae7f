namespace DeepScaleLM.Theory.Kernels;

/// <summary>
/// The mean attention matrix of one layer at initialisation, A[t, j] = rescale[t] w[t, j], with w the softmax
/// probabilities (each row sums to 1 over the keys it may see) and rescale the per-query-position output scale of the
/// op contract (E-SPA's D_l, spa-theory.md 2.1; the position-aware scheme's per-position rescale). Three forms:
/// uniform over all T keys (bidirectional attention with small Q/K, dslm-theory.md 2.7's ss2 -&gt; 0 limit), uniform
/// over the t + 1 keys up to t (causal, open-problems.md 2), or a given dense matrix (E-SPA's A_l). The uniform forms
/// cost O(T^2) through prefix sums; the dense form O(T^3).
/// </summary>
public sealed class AttentionPattern
{
    private readonly double[,]? _dense; // A (rescale included) for the dense form
    private readonly double[] _rescale;

    private AttentionPattern(int tokens, bool causal, double[,]? dense, double[] rescale)
    {
        Tokens = tokens;
        Causal = causal;
        _dense = dense;
        _rescale = rescale;
    }

    /// <summary>T, the number of query and key positions.</summary>
    public int Tokens { get; }

    /// <summary>Whether a query sees only keys at or before it.</summary>
    public bool Causal { get; }

    /// <summary>Uniform attention (all probabilities equal over the visible keys), optionally rescaled per query position.</summary>
    /// <param name="tokens">T.</param>
    /// <param name="causal">Causal (position t averages t + 1 tokens) or bidirectional (every position averages T).</param>
    /// <param name="rescale">The per-query-position output scale, length T; null for 1.</param>
    /// <exception cref="ArgumentException">The rescale vector's length is not T.</exception>
    public static AttentionPattern Uniform(int tokens, bool causal, IReadOnlyList<double>? rescale = null)
    {
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "Attention needs at least one token.");
        if (rescale is not null && rescale.Count != tokens)
            throw new ArgumentException($"The rescale vector has {rescale.Count} entries, but attention spans {tokens} tokens.", nameof(rescale));
        return new AttentionPattern(tokens, causal, null, rescale?.ToArray() ?? Enumerable.Repeat(1.0, tokens).ToArray());
    }

    /// <summary>A given attention matrix A = D softmax(B) (E-SPA's A_l, spa-theory.md 2.1): its row sums are the rescale.</summary>
    /// <param name="attention">A, T x T, non-negative.</param>
    /// <param name="causal">Whether A is lower triangular (informational).</param>
    public static AttentionPattern Dense(double[,] attention, bool causal)
    {
        int n = attention.GetLength(0);
        if (attention.GetLength(1) != n) throw new ArgumentException($"An attention matrix is square; got {n} x {attention.GetLength(1)}.", nameof(attention));
        var rescale = new double[n];
        for (int t = 0; t < n; t++)
            for (int j = 0; j < n; j++) rescale[t] += attention[t, j];
        return new AttentionPattern(n, causal, (double[,])attention.Clone(), rescale);
    }

    /// <summary>Whether the mean weights are uniform over the visible keys (the uniform forms), not a given dense matrix.</summary>
    public bool IsUniform => _dense is null;

    /// <summary>The output scale of query position t (the row sum of A).</summary>
    /// <param name="t">The query position.</param>
    public double Rescale(int t) => _rescale[t];

    /// <summary>The number of keys query position t sees.</summary>
    /// <param name="t">The query position.</param>
    public int VisibleKeys(int t) => Causal ? t + 1 : Tokens;

    /// <summary>sum_j w[t, j]^2, the squared norm of a probability row: 1 / (visible keys) for uniform attention.</summary>
    /// <param name="t">The query position.</param>
    public double ProbabilitySquareSum(int t)
    {
        if (_dense is null) return 1.0 / VisibleKeys(t);
        double sum = 0, scale = _rescale[t];
        for (int j = 0; j < Tokens; j++) sum += _dense[t, j] / scale * (_dense[t, j] / scale);
        return sum;
    }

    /// <summary>sum_j w[t, j]^power v[j] for each query t: the probability-weighted (power 1) or squared-probability-weighted
    /// (power 2) sum of a per-key vector.</summary>
    public double[] WeightedKeySums(double[] perKey, int power)
    {
        int n = Tokens;
        var result = new double[n];
        if (_dense is null)
        {
            double prefix = 0, total = perKey.Sum();
            for (int t = 0; t < n; t++)
            {
                prefix += perKey[t];
                double weight = 1.0 / VisibleKeys(t);
                result[t] = (Causal ? prefix : total) * (power == 1 ? weight : weight * weight);
            }
            return result;
        }
        for (int t = 0; t < n; t++)
            for (int j = 0; j < n; j++)
                result[t] += Math.Pow(_dense[t, j] / _rescale[t], power) * perKey[j];
        return result;
    }

    /// <summary>sum_t A[t, j]^2 v[t] for each key j: how a per-query diagonal reaches a key's diagonal in the backward pass.</summary>
    public double[] SquaredColumnSums(double[] perQuery)
    {
        int n = Tokens;
        var result = new double[n];
        if (_dense is null)
        {
            double suffix = 0, total = 0;
            for (int t = 0; t < n; t++) total += Square(_rescale[t] / VisibleKeys(t)) * perQuery[t];
            for (int j = n - 1; j >= 0; j--)
            {
                suffix += Square(_rescale[j] / VisibleKeys(j)) * perQuery[j];
                result[j] = Causal ? suffix : total;
            }
            return result;
        }
        for (int j = 0; j < n; j++)
            for (int t = 0; t < n; t++)
                result[j] += Square(_dense[t, j]) * perQuery[t];
        return result;
    }

    /// <summary>A K A^T: the kernel of the attention output when the values have kernel K and the probabilities are at their mean.</summary>
    /// <param name="values">K, the values' kernel.</param>
    public TokenKernel Forward(TokenKernel values)
    {
        int n = Tokens;
        if (_dense is null && !Causal)
        {
            // Every row is the same average: (A K A^T)[t, u] = rescale_t rescale_u mean(K).
            double mean = values.MeanVariance / n + (n == 1 ? 0 : values.MeanCovariance * (n - 1) / n);
            if (_rescale.All(scale => scale == _rescale[0]))
                return TokenKernel.Exchangeable(n, mean * Square(_rescale[0]), mean * Square(_rescale[0]));
            return Outer(mean);
        }
        var k = values.DenseCopy();
        var result = new double[n * n];
        if (_dense is null)
        {
            // Causal: (A K A^T)[t, u] = rescale_t rescale_u S[t, u] / ((t + 1)(u + 1)), S the 2-D prefix sum of K.
            PrefixSums(k, n);
            for (int t = 0; t < n; t++)
                for (int u = 0; u < n; u++)
                    result[t * n + u] = _rescale[t] * _rescale[u] * k[t * n + u] / ((t + 1.0) * (u + 1.0));
            return TokenKernel.FromDense(n, result);
        }
        return TokenKernel.FromDense(n, Sandwich(_dense, k, n, transposeOuter: false));
    }

    /// <summary>A^T G A: the gradient kernel at the values when the output's gradient has kernel G.</summary>
    /// <param name="outputGradient">G.</param>
    public TokenKernel Backward(TokenKernel outputGradient)
    {
        int n = Tokens;
        if (_dense is null && !Causal && outputGradient.IsExchangeable)
        {
            // Every entry is sum_{t, u} rescale_t rescale_u G[t, u] / T^2, without a T x T buffer.
            double sum = 0, sumOfSquares = 0;
            foreach (double scale in _rescale)
            {
                sum += scale;
                sumOfSquares += scale * scale;
            }
            double entry = (sum * sum * outputGradient.MeanCovariance + sumOfSquares * (outputGradient.MeanVariance - outputGradient.MeanCovariance)) / ((double)n * n);
            return TokenKernel.Exchangeable(n, entry, entry);
        }
        var g = outputGradient.DenseCopy();
        if (_dense is null)
        {
            // G'[t, u] = rescale_t rescale_u G[t, u] / (visible_t visible_u); the result sums G' over t &gt;= j, u &gt;= k
            // (causal: 2-D suffix sums) or over all t, u (bidirectional: one number).
            for (int t = 0; t < n; t++)
                for (int u = 0; u < n; u++)
                    g[t * n + u] *= _rescale[t] * _rescale[u] / ((double)VisibleKeys(t) * VisibleKeys(u));
            if (!Causal)
            {
                double total = g.Sum();
                return TokenKernel.Exchangeable(n, total, total);
            }
            SuffixSums(g, n);
            return TokenKernel.FromDense(n, g);
        }
        return TokenKernel.FromDense(n, Sandwich(_dense, g, n, transposeOuter: true));
    }

    private TokenKernel Outer(double value)
    {
        int n = Tokens;
        var result = new double[n * n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
                result[t * n + u] = value * _rescale[t] * _rescale[u];
        return TokenKernel.FromDense(n, result);
    }

    /// <summary>In place: k[t, u] = sum over j &lt;= t, l &lt;= u of k[j, l].</summary>
    private static void PrefixSums(double[] k, int n)
    {
        for (int t = 0; t < n; t++)
            for (int u = 1; u < n; u++) k[t * n + u] += k[t * n + u - 1];
        for (int t = 1; t < n; t++)
            for (int u = 0; u < n; u++) k[t * n + u] += k[(t - 1) * n + u];
    }

    /// <summary>In place: g[j, l] = sum over t &gt;= j, u &gt;= l of g[t, u].</summary>
    internal static void SuffixSums(double[] g, int n)
    {
        for (int t = 0; t < n; t++)
            for (int u = n - 2; u >= 0; u--) g[t * n + u] += g[t * n + u + 1];
        for (int t = n - 2; t >= 0; t--)
            for (int u = 0; u < n; u++) g[t * n + u] += g[(t + 1) * n + u];
    }

    /// <summary>A K A^T (or A^T K A with <paramref name="transposeOuter"/>) for a dense A, row-major K.</summary>
    private static double[] Sandwich(double[,] a, double[] k, int n, bool transposeOuter)
    {
        double At(int i, int j) => transposeOuter ? a[j, i] : a[i, j];
        var left = new double[n * n]; // A K
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double weight = At(i, j);
                if (weight == 0) continue;
                for (int l = 0; l < n; l++) left[i * n + l] += weight * k[j * n + l];
            }
        var result = new double[n * n]; // (A K) A^T
        for (int i = 0; i < n; i++)
            for (int u = 0; u <= i; u++)
            {
                double sum = 0;
                for (int l = 0; l < n; l++) sum += left[i * n + l] * At(u, l);
                result[i * n + u] = result[u * n + i] = sum;
            }
        return result;
    }

    private static double Square(double value) => value * value;
}
