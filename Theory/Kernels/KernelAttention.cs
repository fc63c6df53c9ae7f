using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Kernels;

/// <summary>
/// The attention sublayer on token kernels: H heads of width d / H whose probabilities follow
/// <see cref="AttentionPattern"/> (uniform causal, uniform bidirectional or E-SPA's A_l, with a per-position rescale),
/// the output projection and the hidden dropout. Per head and coordinate (dslm-theory.md 2.7 rewritten per position):
/// V = x W_V has kernel d sv2 K; with the probabilities at their mean the output kernel is A (d sv2 K) A^T; on the
/// diagonal of query t come the two terms the mean misses, with n2_t = sum_j w[t, j]^2 (1 / L for uniform attention)
/// playing 1 / L:
/// - random Q/K logits of variance ss2 = (1 - r) d^2 sq2^2 s2^2 spread the probabilities (the lognormal weights of
///   2.6). For the values' independent part, (1 - r) s2 per key, the mean weights give n2; the random ones give
///   F + (phi (H - F) + G - H) / d, with F = E[sum_j w_j^2], G = E[(sum_j w_j z_j)^2], H = E[sum_j w_j^2 z_j^2] over
///   1 / n2 keys (<see cref="Softmax.WeightMoments"/>, exact for any key count) and phi the input rows' norm
///   fluctuation (<see cref="InputNormFluctuation"/>): + (1 - r) s2 (F + (phi (H - F) + G - H) / d - n2). The 1/d part
///   is the component of each value along the logits' own direction, which the weights favour. For many keys F, G
///   tend to exp(ss2) n2 and ss2 and this is 2.7's (1 - r) s2 n2 (exp(ss2) - 1) + (1 - r)^2 (1 - n2) sw s2^2,
///   sw = d s2 sq2^2 (2.7's 4 (1 - r)^2 sw s2^2 exp(ss2) n2 is not there: an independent Monte Carlo of causal
///   attention at d = 32-64 agrees within 5 % at every position without it, where 2.7's form is 2.9x too large at
///   the first, whose single key takes weight 1);
/// - dropout p_a on the probabilities: + p_a / (1 - p_a) E[sum_j w_j^2 K[j, j]] (exact for inverted dropout);
/// - off the diagonal 2.7's 2 (1 - r)^2 d sq2^2 s2^3 sqrt(n2_t n2_u).
/// r and s2 are the correlation and mean variance of the keys query t sees, read off the kernel. For bidirectional
/// attention over an exchangeable kernel of many tokens this is 2.7 (within 1e-4 at L = 300). Backward through V (2.7):
/// A^T G A plus, on the diagonal of key j, sum_t A[t, j]^2 G[t, t] (F_t / (n2_t (1 - p_a)) - 1): the dropout term,
/// and the exp(ss2) factor (here F / n2) that dslm-theory.md 2.7 reports brings an independent Monte Carlo within
/// 1.3%; then W_V's d sv2 over the H heads. Plus, not in 2.7, the path through the logits into Q and K
/// (<see cref="QueryKeyBackward"/>), which with logit variance ~1 and small r carries more than half the gradient;
/// 0 for E-SPA, whose W_Q = 0.
/// </summary>
public sealed class KernelAttention : IKernelMap
{
    private readonly int _modelWidth;
    private readonly double _queryKeyVariance, _valueVariance, _attentionDropout;
    private readonly PairwiseKernelMap _projection;

    /// <summary>An attention sublayer with the given pattern and weight variances.</summary>
    /// <param name="modelWidth">d.</param>
    /// <param name="pattern">The mean attention matrix, with its per-position rescale.</param>
    /// <param name="queryKeyVariance">sq2, the variance of every weight of W_Q and W_K (0 for E-SPA's zero queries).</param>
    /// <param name="valueVariance">sv2, the variance of every weight of W_V.</param>
    /// <param name="outputVariance">The variance of every weight of the output projection.</param>
    /// <param name="attentionDropout">p_a, dropout on the probabilities (0 for the op contract, which has none).</param>
    /// <param name="hiddenDropout">p, dropout after the output projection.</param>
    public KernelAttention(int modelWidth, AttentionPattern pattern, double queryKeyVariance, double valueVariance, double outputVariance,
        double attentionDropout, double hiddenDropout)
    {
        _modelWidth = modelWidth;
        Pattern = pattern;
        _queryKeyVariance = queryKeyVariance;
        _valueVariance = valueVariance;
        _attentionDropout = new Dropout(attentionDropout).Probability;
        _projection = new PairwiseKernelMap(new MomentChain(new Linear(modelWidth, modelWidth, outputVariance), new Dropout(hiddenDropout)));
    }

    /// <summary>The mean attention matrix.</summary>
    public AttentionPattern Pattern { get; }

    /// <summary>
    /// How much the input rows' norms fluctuate, as <see cref="LayerNorm.NormFluctuation"/>: 1 for Gaussian rows (the
    /// default), 0 for a LayerNorm output, whose rows all have norm sqrt(d). With random logits it matters at order
    /// 1/d: a key whose logit is large has, on a fixed-norm row, less left for the rest of its value (at d = 32 this
    /// lowers a causal query's late-position variance by ~10 %).
    /// </summary>
    public double InputNormFluctuation { get; init; } = 1;

    /// <summary>The kernel of one head's output (before the output projection), per coordinate.</summary>
    /// <param name="input">The kernel of the sublayer's input (mean 0).</param>
    public TokenKernel HeadOutput(TokenKernel input)
    {
        int n = input.Tokens;
        double gain = _modelWidth * _valueVariance, pa = _attentionDropout;
        var mean = Pattern.Forward(input).Map((_, _, entry, _) => gain * entry);
        var rows = RowStatistics(input, mean, gain);
        var diagonalAdd = new double[n];
        for (int t = 0; t < n; t++)
        {
            var (s2, r, n2, squared, weights) = rows[t];
            // The values' independent part, (1 - r) s2, per key: the component along the logits' direction (1/d of it)
            // is averaged with the weights that favour it (tilted mean square); the rest keeps the square sum, less what
            // a fixed-norm input (a LayerNorm output) takes from it where that component is large.
            double d = _modelWidth, phi = InputNormFluctuation;
            double random = weights.SquareSum + (phi * (weights.TiltedSquareSum - weights.SquareSum)
                + weights.TiltedMeanSquare - weights.TiltedSquareSum) / d;
            diagonalAdd[t] = Square(Pattern.Rescale(t)) * gain * (squared * weights.SquareSum / n2 * pa / (1 - pa)
                + (1 - r) * s2 * (random - n2));
        }
        double OffDiagonalAdd(int t, int u)
        {
            if (_queryKeyVariance == 0) return 0;
            double r = (rows[t].Correlation + rows[u].Correlation) / 2, s2 = (rows[t].Variance + rows[u].Variance) / 2;
            return Pattern.Rescale(t) * Pattern.Rescale(u) * gain * 2 * (1 - r) * (1 - r) * _modelWidth * _queryKeyVariance * _queryKeyVariance
                * s2 * s2 * s2 * Math.Sqrt(rows[t].ProbabilitySquares * rows[u].ProbabilitySquares);
        }
        if (mean.IsExchangeable && diagonalAdd.All(add => add == diagonalAdd[0]))
            return TokenKernel.Exchangeable(n, mean[0, 0] + diagonalAdd[0], n == 1 ? 0 : mean[0, 1] + OffDiagonalAdd(0, 1));
        var dense = mean.DenseCopy();
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
                dense[t * n + u] += t == u ? diagonalAdd[t] : OffDiagonalAdd(t, u);
        return TokenKernel.FromDense(n, dense);
    }

    /// <summary>The sublayer's output kernel: the heads, the output projection, the hidden dropout.</summary>
    /// <param name="input">The kernel of the sublayer's input (mean 0).</param>
    public TokenKernel Forward(TokenKernel input) => _projection.Forward(HeadOutput(input));

    /// <summary>The gradient kernel at the sublayer's input: through V, and through the logits into Q and K.</summary>
    /// <param name="input">The kernel of the sublayer's forward input.</param>
    /// <param name="outputGradient">The gradient kernel at the sublayer's output.</param>
    public TokenKernel Backward(TokenKernel input, TokenKernel outputGradient)
    {
        var head = HeadOutput(input);
        var headGradient = _projection.Backward(head, outputGradient);
        double gain = _modelWidth * _valueVariance;
        var rows = RowStatistics(input, Pattern.Forward(input).Map((_, _, entry, _) => gain * entry), gain);
        var throughValues = ValueBackward(headGradient, rows);
        return _queryKeyVariance == 0 ? throughValues
            : TokenKernel.Combine(throughValues, QueryKeyBackward(input, headGradient, rows), (v, qk) => v + qk);
    }

    /// <summary>The gradient kernel at the input through V: A^T G A plus the random weights' and dropout's diagonal.</summary>
    private TokenKernel ValueBackward(TokenKernel headGradient, RowStatistic[] rows)
    {
        int n = headGradient.Tokens;
        double gain = _modelWidth * _valueVariance, pa = _attentionDropout;
        var perQuery = new double[n];
        for (int t = 0; t < n; t++) perQuery[t] = headGradient[t, t] * (rows[t].Weights.SquareSum / rows[t].ProbabilitySquares / (1 - pa) - 1);
        var diagonalAdd = Pattern.SquaredColumnSums(perQuery);
        var mean = Pattern.Backward(headGradient);
        if (mean.IsExchangeable && diagonalAdd.All(add => add == diagonalAdd[0]))
            return TokenKernel.Exchangeable(n, gain * (mean[0, 0] + diagonalAdd[0]), n == 1 ? 0 : gain * mean[0, 1]);
        var dense = mean.DenseCopy();
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
                dense[t * n + u] = gain * (dense[t * n + u] + (t == u ? diagonalAdd[t] : 0));
        return TokenKernel.FromDense(n, dense);
    }

    /// <summary>
    /// The gradient kernel at the input through the logits. The logit gradient of query t is
    /// dS[t, j] = w[t, j] g_t . (v_j - o_t), which sums to 0 over j, so only the independent parts (1 - r) s2 of keys and
    /// values reach it; c_v = d sv2 (1 - r) s2 and c_k = d sq2 (1 - r) s2 are their per-coordinate variances.
    /// - Through Q, at queries t, t': d sq2 rho_t rho_t' G[t, t'] c_v c_k (J[t, t'] + P[t, t'] / d). J[t, t] is the
    ///   softmax Jacobian's square sum E[sum_j w^2 (1 - 2 w + sum_k w_k^2)] (<see cref="SoftmaxWeightMoments.JacobianSquareSum"/>)
    ///   and, for t != t', the mean weights' m a_t a_t' (1 - a_t - a_t' + m a_t a_t') over their m shared keys,
    ///   a_t = 1 / keys(t). P is what the keys' random pairwise overlaps x_j . x_l (variance 1/d) leave after that
    ///   cancellation (<see cref="SoftmaxWeightMoments.PairOverlapSum"/> on the diagonal).
    /// - Through K, at keys j, j': (d sq2)^2 sum_{t, u} w[t, j] w[u, j'] M[t, u] (delta_jj' - w[u, j] - w[t, j'] + w_t . w_u)
    ///   with M = rho_t rho_u G[t, u] K_x[t, u] c_v, mean weights except J / keys(t) on the t = u, j = j' terms. Its rows
    ///   sum to 0: moving every key alike leaves the softmax unchanged.
    /// Uniform mean weights only (a dense pattern is E-SPA's, whose queries are 0); 1 / (1 - p_a) for dropout on the
    /// probabilities.
    /// </summary>
    private TokenKernel QueryKeyBackward(TokenKernel input, TokenKernel headGradient, RowStatistic[] rows)
    {
        if (!Pattern.IsUniform)
            throw new NotSupportedException("The Q/K backward assumes uniform mean attention weights; a dense pattern (E-SPA) has zero queries.");
        int n = input.Tokens;
        double d = _modelWidth, q = d * _queryKeyVariance, gain = d * _valueVariance, dropout = 1 / (1 - _attentionDropout);
        var share = new double[n]; // a_t = 1 / keys(t)
        for (int t = 0; t < n; t++) share[t] = 1.0 / Pattern.VisibleKeys(t);
        double Independent(int t, int u) => (1 - (rows[t].Correlation + rows[u].Correlation) / 2) * (rows[t].Variance + rows[u].Variance) / 2;
        double Jacobian(int t, int u)
        {
            if (t == u) return rows[t].Weights.JacobianSquareSum;
            double m = Math.Min(Pattern.VisibleKeys(t), Pattern.VisibleKeys(u)), at = share[t], au = share[u];
            return m * at * au * (1 - at - au + m * at * au);
        }
        // What reaches Q: J plus the keys' random pairwise overlaps, which the cancellation over keys leaves at 1/d.
        double QueryJacobian(int t, int u)
        {
            if (t == u) return Jacobian(t, t) + rows[t].Weights.PairOverlapSum / d;
            double m = Math.Min(Pattern.VisibleKeys(t), Pattern.VisibleKeys(u)), at = share[t], au = share[u];
            return Jacobian(t, u) + (1 - m * at * au) * (1 - at) * (1 - au) / d;
        }
        bool exchangeable = !Pattern.Causal && input.IsExchangeable && headGradient.IsExchangeable
            && Enumerable.Range(0, n).All(t => Pattern.Rescale(t) == Pattern.Rescale(0));
        if (exchangeable)
        {
            // Every query sees all T keys: sum M = T M_d + T (T - 1) M_o, and the K-path sums of the dense form collapse.
            double rho2 = Square(Pattern.Rescale(0)) * dropout, iv = Independent(0, 0), a = share[0];
            double qDiagonal = q * rho2 * headGradient[0, 0] * gain * iv * q * iv * QueryJacobian(0, 0);
            double qOff = n == 1 ? 0 : q * rho2 * headGradient[0, 1] * gain * iv * q * iv * QueryJacobian(0, 1);
            double mDiagonal = rho2 * headGradient[0, 0] * input[0, 0] * gain * iv;
            double mOff = n == 1 ? 0 : rho2 * headGradient[0, 1] * input[0, 1] * gain * iv;
            double total = n * mDiagonal + n * (n - 1.0) * mOff, random = n * mDiagonal * (Jacobian(0, 0) * a - a * a * (1 - a));
            return TokenKernel.Exchangeable(n, qDiagonal + q * q * (total * a * a * (1 - a) + random), qOff - q * q * total * a * a * a);
        }
        var result = new double[n * n];
        var (first, second, third) = (new double[n * n], new double[n * n], new double[n * n]);
        var randomWeights = new double[n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
            {
                double common = Pattern.Rescale(t) * Pattern.Rescale(u) * headGradient[t, u] * dropout, iv = Independent(t, u);
                result[t * n + u] = q * common * gain * iv * q * iv * QueryJacobian(t, u); // through Q
                double m = Math.Min(Pattern.VisibleKeys(t), Pattern.VisibleKeys(u)), at = share[t], au = share[u];
                double mix = common * input[t, u] * gain * iv;                         // M[t, u]
                first[t * n + u] = at * au * mix;
                second[t * n + u] = at * au * au * mix;
                third[t * n + u] = m * at * at * au * au * mix;
                if (t == u) randomWeights[t] = mix * (Jacobian(t, t) * at - at * at * (1 - at));
            }
        // Sums over the queries that see key j: t >= j (2-D suffix sums) for causal attention, all t otherwise.
        Func<int, int, double> first2 = Sums(first), second2 = Sums(second), third2 = Sums(third);
        var randomSums = new double[n];
        double running = 0;
        for (int t = n - 1; t >= 0; t--) randomSums[t] = running += randomWeights[t];
        if (!Pattern.Causal) Array.Fill(randomSums, running);
        for (int j = 0; j < n; j++)
            for (int k = 0; k < n; k++)
            {
                int later = Math.Max(j, k);
                double throughKeys = (j == k ? first2(j, j) + randomSums[j] : 0) - second2(j, later) - second2(k, later) + third2(j, k);
                result[j * n + k] += q * q * throughKeys;
            }
        return TokenKernel.FromDense(n, result);

        Func<int, int, double> Sums(double[] values)
        {
            if (!Pattern.Causal)
            {
                double total = values.Sum();
                return (_, _) => total;
            }
            AttentionPattern.SuffixSums(values, n);
            return (j, k) => values[j * n + k];
        }
    }

    /// <summary>
    /// Per query t: s2 = the probability-weighted variance of its keys, r = their mean pairwise correlation (from the
    /// mean output's diagonal), n2 = sum_j w^2, sum_j w^2 K[j, j], and the softmax weight moments at the logit variance
    /// ss2 = (1 - r) d^2 sq2^2 s2^2.
    /// </summary>
    private RowStatistic[] RowStatistics(TokenKernel input, TokenKernel meanOutput, double gain)
    {
        int n = input.Tokens;
        var variances = input.Diagonal();
        var weighted = Pattern.WeightedKeySums(variances, 1);
        var squared = Pattern.WeightedKeySums(variances, 2);
        var rows = new RowStatistic[n];
        for (int t = 0; t < n; t++)
        {
            double n2 = Pattern.ProbabilitySquareSum(t), s2 = weighted[t];
            double scale = Square(Pattern.Rescale(t)) * gain;
            double crossSum = scale == 0 ? 0 : meanOutput[t, t] / scale - squared[t]; // sum_{j != k} w_j w_k K[j, k]
            double r = n2 < 1 - 1e-12 && s2 > 0 ? Math.Clamp(crossSum / (s2 * (1 - n2)), -1, 1) : 1;
            double logitVariance = (1 - r) * Square(_modelWidth * _queryKeyVariance * s2);
            rows[t] = new RowStatistic(s2, r, n2, squared[t], WeightMoments(n2, logitVariance));
        }
        return rows;
    }

    /// <summary>
    /// The softmax weights' square sum and tilted mean square at 1 / n2 keys (exact for uniform mean weights) and logit
    /// variance ss2 (<see cref="Softmax.WeightMoments"/>); 2.7's exp(ss2) n2 and ss2 are their many-key limits.
    /// Memoised, since forward and backward ask the same rows (so an instance is not for concurrent use).
    /// </summary>
    private SoftmaxWeightMoments WeightMoments(double n2, double logitVariance)
    {
        double keys = n2 >= 1 - 1e-12 ? 1 : 1 / n2;
        if (keys == 1 || logitVariance == 0) return Softmax.WeightMoments(keys, logitVariance); // closed forms
        if (!_weightMoments.TryGetValue((keys, logitVariance), out var moments))
            _weightMoments[(keys, logitVariance)] = moments = Softmax.WeightMoments(keys, logitVariance);
        return moments;
    }

    private readonly Dictionary<(double, double), SoftmaxWeightMoments> _weightMoments = [];

    private readonly record struct RowStatistic(double Variance, double Correlation, double ProbabilitySquares, double SquaredWeighted,
        SoftmaxWeightMoments Weights);

    private static double Square(double value) => value * value;
}
