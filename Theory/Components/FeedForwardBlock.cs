namespace DeepScaleLM.Theory.Components;

/// <summary>
/// The feed-forward sublayer as DSLM models it (dslm-theory.md 2.10): Linear d -&gt; hidden, activation,
/// Linear hidden -&gt; d, then the hidden dropout, composed from the component formulas of 2.1, 2.2/2.3 and 2.5.
/// With ReLU, hidden width 4d and both weight variances sf2 this gives the closed forms of 2.10: output variance
/// 2 d^2 sf2^2 s2 / (1 - p), the same backward gain, and correlation (1 - p)(r + (sqrt(1 - r^2) - r arccos r) / pi).
/// </summary>
public sealed class FeedForwardBlock : IMomentMap
{
    private readonly MomentChain _chain;

    /// <summary>A feed-forward block with the given widths, weight variances, activation and dropout.</summary>
    /// <param name="modelWidth">d, the block's input and output width.</param>
    /// <param name="hiddenWidth">The width after the first linear layer (4d in the official code).</param>
    /// <param name="inputWeightVariance">Variance of the weights of the first linear layer.</param>
    /// <param name="outputWeightVariance">Variance of the weights of the second linear layer.</param>
    /// <param name="dropout">p, the dropout after the second linear layer.</param>
    /// <param name="activation">The activation's moments: <see cref="Relu"/> (the official code) or <see cref="Gelu"/>.</param>
    public FeedForwardBlock(int modelWidth, int hiddenWidth, double inputWeightVariance, double outputWeightVariance,
        double dropout, IMomentMap activation) =>
        _chain = new MomentChain(
            new Linear(modelWidth, hiddenWidth, inputWeightVariance),
            activation,
            new Linear(hiddenWidth, modelWidth, outputWeightVariance),
            new Dropout(dropout));

    /// <summary>The block's output moments (dslm-theory.md 2.10).</summary>
    /// <param name="input">Moments of the block's input; the mean must be 0 (the activation formulas assume it
    /// after the first linear layer, which always gives mean 0).</param>
    public SignalMoments Forward(SignalMoments input) => _chain.Forward(input);

    /// <summary>The gradient at the block's input (dslm-theory.md 2.10).</summary>
    /// <param name="input">Moments of the block's input.</param>
    /// <param name="outputGradient">Moments of the gradient at the block's output.</param>
    public GradientMoments Backward(SignalMoments input, GradientMoments outputGradient) => _chain.Backward(input, outputGradient);

    /// <summary>
    /// The official code's `ffn_block` correlation (1 - p)(r + (sqrt(1 - r^2) - r arccos r) / pi) for a ReLU block fed
    /// a unit-variance input of correlation r (dslm-theory.md 2.10, 4.1 `sigma_attn_v_out`).
    /// </summary>
    /// <param name="inputCorrelation">r at the block's input.</param>
    /// <param name="dropout">p, the hidden dropout after the block.</param>
    public static double OfficialOutputCorrelation(double inputCorrelation, double dropout) =>
        (1 - dropout) * Relu.SecondMomentCorrelation(inputCorrelation);
}
