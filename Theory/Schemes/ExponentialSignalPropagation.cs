namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// One layer of E-SPA (spa-theory.md 2.1-2.2): the target token kernel Sigma_l, the attention matrix A_l that maps
/// Sigma_{l-1} to it, and the bias and rescale that make a zero-query attention layer compute exactly A_l:
/// D_l softmax(B_l) = A_l row by row.
/// </summary>
/// <param name="Layer">l, from 1 to L.</param>
/// <param name="Gamma">gamma_l, the kernel's decay rate.</param>
/// <param name="Alpha">alpha_l = sqrt(1 - exp(-2 gamma_l)).</param>
/// <param name="Kernel">Sigma_l[i, j] = exp(-gamma_l |i - j|), T x T.</param>
/// <param name="Attention">A_l, T x T; lower triangular for causal attention.</param>
/// <param name="Bias">B_l[i, j] = log(A_l[i, j] / sum_k A_l[i, k]); negative infinity where A_l is 0: above the
/// diagonal for causal attention (exactly the causal mask), and far below it in long sequences, where exp(-gamma_l |i - j|)
/// underflows float64 and softmax would give 0 anyway.</param>
/// <param name="Rescale">D_l[i] = sum_k A_l[i, k], the per-position output rescale.</param>
public sealed record ESpaLayer(int Layer, double Gamma, double Alpha, double[,] Kernel, double[,] Attention, double[,] Bias,
    double[] Rescale);

/// <summary>
/// E-SPA, the exponential kernel-shaping attention of He et al. 2023 (spa-theory.md 2.1-2.2), built in float64.
/// Causal: L_l = Cholesky factor of Sigma_l, A_l = L_l L_{l-1}^-1 (lower triangular, so automatically causal).
/// Bidirectional: L_l = the symmetric square root of Sigma_l instead (the paper's Appendix A, as quoted in 2.1).
/// Either way A_l Sigma_{l-1} A_l^T = Sigma_l, with Sigma_0 = I.
/// </summary>
public static class ExponentialSignalPropagation
{
    /// <summary>gamma_L = 0.005, the final-layer target both re-implementations default to (spa-theory.md 2.2).</summary>
    public const double DefaultFinalGamma = 0.005;

    /// <summary>alpha = sqrt(1 - exp(-2 gamma)) (spa-theory.md 2.2).</summary>
    /// <param name="gamma">The kernel decay rate.</param>
    public static double Alpha(double gamma) => Math.Sqrt(-double.ExpM1(-2 * gamma));

    /// <summary>
    /// gamma_l = -ln(1 - alpha_L^(2 l / L)) / 2, so that alpha_l = alpha_L^(l / L) is geometric in l
    /// (spa-theory.md 2.2).
    /// </summary>
    /// <param name="layer">l, from 1 to L.</param>
    /// <param name="layers">L, the number of attention layers.</param>
    /// <param name="finalGamma">gamma_L.</param>
    public static double Gamma(int layer, int layers, double finalGamma = DefaultFinalGamma) =>
        -0.5 * Math.Log(1 - Math.Pow(Alpha(finalGamma), 2.0 * layer / layers));

    /// <summary>Sigma[i, j] = exp(-gamma |i - j|) over T positions: the covariance of a stationary Ornstein-Uhlenbeck
    /// process, positive definite for gamma &gt; 0 (spa-theory.md 2.2).</summary>
    /// <param name="tokens">T.</param>
    /// <param name="gamma">The decay rate; positive infinity gives the identity (Sigma_0).</param>
    public static double[,] Kernel(int tokens, double gamma)
    {
        var kernel = new double[tokens, tokens];
        for (int i = 0; i < tokens; i++)
            for (int j = 0; j < tokens; j++)
                kernel[i, j] = i == j ? 1 : Math.Exp(-gamma * Math.Abs(i - j));
        return kernel;
    }

    /// <summary>
    /// The Cholesky factor of Sigma = exp(-gamma |i - j|) in closed form, since Sigma is the AR(1) covariance with
    /// rho = exp(-gamma): L[0, 0] = 1, L[i, 0] = rho^i, L[i, j] = rho^(i - j) alpha for 1 &lt;= j &lt;= i
    /// (spa-theory.md 2.2 derived). O(T^2) and free of the cancellation a generic factorisation would suffer.
    /// </summary>
    /// <param name="tokens">T.</param>
    /// <param name="gamma">The decay rate; positive infinity gives the identity.</param>
    public static double[,] CholeskyFactor(int tokens, double gamma)
    {
        double alpha = Alpha(gamma);
        var factor = new double[tokens, tokens];
        for (int i = 0; i < tokens; i++)
            for (int j = 0; j <= i; j++)
                factor[i, j] = (i == j ? 1 : Math.Exp(-gamma * (i - j))) * (j == 0 ? 1 : alpha);
        return factor;
    }

    /// <summary>
    /// Every layer of E-SPA for a stack of L attention layers over T tokens (spa-theory.md 2.1-2.2), computed lazily in
    /// order, so a caller that uses one layer at a time holds three T x T matrices rather than 3 L of them.
    /// </summary>
    /// <param name="tokens">T, the sequence length.</param>
    /// <param name="layers">L, the number of attention layers.</param>
    /// <param name="finalGamma">gamma_L, the last layer's kernel decay.</param>
    /// <param name="causal">Cholesky factors (causal attention) or symmetric square roots (bidirectional).</param>
    /// <exception cref="InvalidOperationException">(While enumerating.) An entry of A_l is negative beyond rounding, so no
    /// softmax bias B_l can produce it (spa-theory.md 2.1: the construction requires A_l &gt; 0 where attention is
    /// allowed).</exception>
    public static IEnumerable<ESpaLayer> Build(int tokens, int layers, double finalGamma = DefaultFinalGamma, bool causal = true)
    {
        double previousGamma = double.PositiveInfinity; // Sigma_0 = I
        // The bidirectional path needs Sigma_{l-1}^(-1/2) of the previous layer; I at l = 1.
        double[,] previousInverseRoot = Kernel(tokens, previousGamma);
        for (int l = 1; l <= layers; l++)
        {
            double gamma = Gamma(l, layers, finalGamma);
            var kernel = Kernel(tokens, gamma);
            double[,] attention;
            if (causal)
                attention = DivideByPreviousFactor(CholeskyFactor(tokens, gamma), previousGamma);
            else
            {
                var (root, inverseRoot) = DenseMatrix.SymmetricSquareRoots(kernel);
                attention = DenseMatrix.Multiply(root, previousInverseRoot);
                previousInverseRoot = inverseRoot;
                ZeroRoundingNoise(attention, l);
            }
            var (bias, rescale) = BiasAndRescale(attention, causal);
            yield return new ESpaLayer(l, gamma, Alpha(gamma), kernel, attention, bias, rescale);
            previousGamma = gamma;
        }
    }

    /// <summary>
    /// A = L L'^-1 for the previous layer's factor L' (decay gamma'). L'^-1 is bidiagonal: 1 at [0, 0], 1/alpha' on the
    /// rest of the diagonal and -rho'/alpha' just below it, so A[i, j] = L[i, j] L'^-1[j, j] + L[i, j + 1] L'^-1[j + 1, j]
    /// in O(T^2), with exact zeros above the diagonal (spa-theory.md 2.1, 2.2 derived).
    /// </summary>
    private static double[,] DivideByPreviousFactor(double[,] factor, double previousGamma)
    {
        int n = factor.GetLength(0);
        double previousAlpha = Alpha(previousGamma), previousRho = Math.Exp(-previousGamma);
        var attention = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double diagonal = j == 0 ? 1 : 1 / previousAlpha;
                double next = j < i ? factor[i, j + 1] * (-previousRho / previousAlpha) : 0;
                attention[i, j] = factor[i, j] * diagonal + next;
            }
        return attention;
    }

    /// <summary>
    /// Sets to 0 the slightly negative entries that are rounding noise of the eigendecomposition: far from the diagonal
    /// the symmetric root's true entries fall below float64 resolution, and the computed ones scatter around 0 at about
    /// T ulps of the largest entry. A negative entry beyond that is real and cannot be a softmax weight.
    /// </summary>
    private static void ZeroRoundingNoise(double[,] attention, int layer)
    {
        int n = attention.GetLength(0);
        double largest = 0;
        foreach (double value in attention) largest = Math.Max(largest, Math.Abs(value));
        double unitRoundoff = Math.BitIncrement(1.0) - 1.0;
        double noise = 16.0 * n * unitRoundoff * largest;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                if (attention[i, j] >= 0) continue;
                if (attention[i, j] < -noise)
                    throw new InvalidOperationException(
                        $"E-SPA layer {layer}: A[{i}, {j}] = {attention[i, j]:R} is negative, so no softmax bias can produce it " +
                        "(spa-theory.md 2.1 requires A_l > 0 wherever attention is allowed).");
                attention[i, j] = 0;
            }
    }

    /// <summary>
    /// D[i] = row sum of A, B[i, j] = log(A[i, j] / D[i]), so that D softmax(B) = A; B is negative infinity exactly where
    /// causal attention is masked, and where an entry is 0 because it underflowed (spa-theory.md 2.1).
    /// </summary>
    private static (double[,] Bias, double[] Rescale) BiasAndRescale(double[,] attention, bool causal)
    {
        int n = attention.GetLength(0);
        var bias = new double[n, n];
        var rescale = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) rescale[i] += attention[i, j];
            for (int j = 0; j < n; j++)
                bias[i, j] = causal && j > i ? double.NegativeInfinity : Math.Log(attention[i, j] / rescale[i]);
        }
        return (bias, rescale);
    }
}
