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
/// <param name="Bias">B_l[i, j] = log(A_l[i, j] / sum_k A_l[i, k]); negative infinity where A_l is 0 (above the
/// diagonal for causal attention, exactly the causal mask).</param>
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

    /// <summary>Every layer of E-SPA for a stack of L attention layers over T tokens (spa-theory.md 2.1-2.2).</summary>
    /// <param name="tokens">T, the sequence length.</param>
    /// <param name="layers">L, the number of attention layers.</param>
    /// <param name="finalGamma">gamma_L, the last layer's kernel decay.</param>
    /// <param name="causal">Cholesky factors (causal attention) or symmetric square roots (bidirectional).</param>
    /// <exception cref="InvalidOperationException">An entry of A_l that softmax must produce is not positive, so no bias
    /// B_l can represent it (spa-theory.md 2.1: the construction requires A_l &gt; 0 where attention is allowed).</exception>
    public static IReadOnlyList<ESpaLayer> Build(int tokens, int layers, double finalGamma = DefaultFinalGamma, bool causal = true)
    {
        var result = new ESpaLayer[layers];
        double[,] previousFactor = Kernel(tokens, double.PositiveInfinity); // L_0 = I, for both square roots
        double[,]? previousInverseRoot = causal ? null : previousFactor;
        for (int l = 1; l <= layers; l++)
        {
            double gamma = Gamma(l, layers, finalGamma);
            var kernel = Kernel(tokens, gamma);
            double[,] attention;
            if (causal)
            {
                var factor = DenseMatrix.Cholesky(kernel);
                attention = DenseMatrix.DivideByLowerRight(factor, previousFactor);
                previousFactor = factor;
            }
            else
            {
                attention = DenseMatrix.Multiply(DenseMatrix.SymmetricPower(kernel, 0.5), previousInverseRoot!);
                previousInverseRoot = DenseMatrix.SymmetricPower(kernel, -0.5);
            }
            var (bias, rescale) = BiasAndRescale(attention, l, causal);
            result[l - 1] = new ESpaLayer(l, gamma, Alpha(gamma), kernel, attention, bias, rescale);
        }
        return result;
    }

    /// <summary>
    /// D[i] = row sum of A, B[i, j] = log(A[i, j] / D[i]), so that D softmax(B) = A; B is negative infinity exactly
    /// where causal attention is masked (spa-theory.md 2.1).
    /// </summary>
    private static (double[,] Bias, double[] Rescale) BiasAndRescale(double[,] attention, int layer, bool causal)
    {
        int n = attention.GetLength(0);
        var bias = new double[n, n];
        var rescale = new double[n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) rescale[i] += attention[i, j];
            for (int j = 0; j < n; j++)
            {
                if (causal && j > i)
                {
                    bias[i, j] = double.NegativeInfinity;
                    continue;
                }
                if (!(attention[i, j] > 0))
                    throw new InvalidOperationException(
                        $"E-SPA layer {layer}: A[{i}, {j}] = {attention[i, j]:R} is not positive, so no softmax bias can produce it " +
                        "(spa-theory.md 2.1 requires A_l > 0 wherever attention is allowed).");
                bias[i, j] = Math.Log(attention[i, j] / rescale[i]);
            }
        }
        return (bias, rescale);
    }
}
