namespace DeepScaleLM.Theory.Kernels;

/// <summary>How a component maps token kernels: forward from its input kernel, backward from its output's gradient kernel.</summary>
public interface IKernelMap
{
    /// <summary>The kernel of the component's output.</summary>
    /// <param name="input">The kernel of the component's input.</param>
    TokenKernel Forward(TokenKernel input);

    /// <summary>The gradient kernel at the component's input.</summary>
    /// <param name="input">The kernel of the component's forward input.</param>
    /// <param name="outputGradient">The gradient kernel at the component's output.</param>
    TokenKernel Backward(TokenKernel input, TokenKernel outputGradient);
}

/// <summary>
/// A component that acts on each token separately (Linear, activations, LayerNorm, Dropout and their chains, e.g. the
/// feed-forward block) lifted from <see cref="IMomentMap"/> to kernels: the entry K[t, u] only depends on the pair of
/// tokens (t, u), so it is the scalar formula (dslm-theory.md 2.1-2.5) applied to two tokens with variance
/// sqrt(K[t, t] K[u, u]) and correlation K[t, u] / sqrt(K[t, t] K[u, u]). That is exact when the two variances are
/// equal (every branch input is a LayerNorm output) and for positively homogeneous maps (Linear, ReLU, leaky ReLU,
/// Dropout, LayerNorm) whatever they are; an approximation for GeLU at unequal variances. Inputs have mean 0 (the
/// kernel holds second moments, and every signal entering a block is zero-mean); outputs may have a mean, which is
/// folded into the second moment.
/// </summary>
/// <param name="Map">The per-token component.</param>
public sealed record PairwiseKernelMap(IMomentMap Map) : IKernelMap
{
    /// <summary>K'[t, u] = E[f(x_t) f(x_u)] from the scalar forward formula of the pair.</summary>
    /// <param name="input">The kernel of the input.</param>
    public TokenKernel Forward(TokenKernel input) => input.Map((tt, uu, tu, diagonal) =>
    {
        double variance = Math.Sqrt(tt * uu);
        if (variance == 0) return 0;
        var output = Map.Forward(new SignalMoments(0, variance, diagonal ? 1 : tu / variance));
        return diagonal ? output.SecondMoment : output.Covariance + output.Mean * output.Mean;
    });

    /// <summary>G'[t, u] from the scalar backward formula of the pair, given the pair's forward input moments.</summary>
    /// <param name="input">The kernel of the forward input.</param>
    /// <param name="outputGradient">The gradient kernel at the output.</param>
    public TokenKernel Backward(TokenKernel input, TokenKernel outputGradient)
    {
        if (input.Tokens != outputGradient.Tokens)
            throw new ArgumentException($"Input kernel of {input.Tokens} tokens and gradient kernel of {outputGradient.Tokens} tokens differ.",
                nameof(outputGradient));
        if (input.IsExchangeable && outputGradient.IsExchangeable)
        {
            double diagonal = Entry(input[0, 0], input[0, 0], input[0, 0], outputGradient[0, 0], outputGradient[0, 0], outputGradient[0, 0], true);
            double offDiagonal = input.Tokens == 1 ? 0
                : Entry(input[0, 0], input[0, 0], input[0, 1], outputGradient[0, 0], outputGradient[0, 0], outputGradient[0, 1], false);
            return TokenKernel.Exchangeable(input.Tokens, diagonal, offDiagonal);
        }
        int n = input.Tokens;
        var result = new double[n * n];
        for (int t = 0; t < n; t++)
            for (int u = 0; u <= t; u++)
                result[t * n + u] = result[u * n + t] =
                    Entry(input[t, t], input[u, u], input[t, u], outputGradient[t, t], outputGradient[u, u], outputGradient[t, u], t == u);
        return TokenKernel.FromDense(n, result);
    }

    private double Entry(double tt, double uu, double tu, double gtt, double guu, double gtu, bool diagonal)
    {
        double variance = Math.Sqrt(tt * uu), gradientVariance = Math.Sqrt(gtt * guu);
        if (gradientVariance == 0) return 0;
        var inputMoments = new SignalMoments(0, variance, variance == 0 ? 0 : diagonal ? 1 : tu / variance);
        var gradient = Map.Backward(inputMoments, new GradientMoments(gradientVariance, diagonal ? 1 : gtu / gradientVariance));
        return diagonal ? gradient.Variance : gradient.Covariance;
    }
}
