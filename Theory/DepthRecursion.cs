using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Kernels;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Theory;

/// <summary>Where the LayerNorm of each sublayer sits (dslm-theory.md 3, 4.1).</summary>
public enum NormPlacement
{
    /// <summary>x' = lam x + beta f(LN(x)); a final LN after the last layer.</summary>
    PreLayerNorm,

    /// <summary>
    /// x' = lam LN(x) + beta f(LN(x)): Megatron's `--apply-residual-connection-post-layernorm`, the official Post-LN,
    /// where the LN still precedes each block but the residual is taken from its output (dslm-theory.md 4.1); a final
    /// LN after the last layer.
    /// </summary>
    PostLayerNorm,

    /// <summary>
    /// No LayerNorm anywhere: x' = lam x + beta f(x), no final LN. With lam = 0, beta = 1 (the E-SPA plan's residual)
    /// this is the vanilla transformer of spa-theory.md 1: no skips and no normalisation.
    /// </summary>
    None,
}

/// <summary>The two residual sublayers of a block.</summary>
public enum SublayerKind
{
    /// <summary>The attention sublayer (dslm-theory.md 2.10).</summary>
    Attention,

    /// <summary>The feed-forward sublayer (dslm-theory.md 2.10).</summary>
    FeedForward,
}

/// <summary>The predicted moments at one residual sublayer.</summary>
/// <param name="Layer">The block index, from 0.</param>
/// <param name="Kind">Which sublayer of the block.</param>
/// <param name="Stream">The residual stream after the sublayer's combine (for Post-LN, the next LayerNorm's input),
/// averaged over positions (variance and r as the authors measure them, dslm-theory.md 1).</param>
/// <param name="StreamGradient">The gradient of the loss with respect to that same tensor, averaged over positions.</param>
/// <param name="Branch">The sublayer's branch output f(LN(x)), before beta, averaged over positions.</param>
public readonly record struct SublayerPrediction(int Layer, SublayerKind Kind, SignalMoments Stream, GradientMoments StreamGradient,
    SignalMoments Branch)
{
    /// <summary>The stream's variance at each position (all equal for bidirectional attention over exchangeable tokens).</summary>
    public IReadOnlyList<double> PositionVariance { get; init; } = [];

    /// <summary>The stream gradient's variance at each position.</summary>
    public IReadOnlyList<double> PositionGradientVariance { get; init; } = [];

    /// <summary>The branch output's variance at each position.</summary>
    public IReadOnlyList<double> BranchPositionVariance { get; init; } = [];
}

/// <summary>Whole-model predictions at initialisation.</summary>
/// <param name="Embedding">The embedding output, the residual stream's start.</param>
/// <param name="EmbeddingGradient">The gradient at the embedding output.</param>
/// <param name="Sublayers">Two entries per block, attention then feed-forward.</param>
/// <param name="LogitVariance">The variance of the tied-embedding logits.</param>
public sealed record DepthPrediction(SignalMoments Embedding, GradientMoments EmbeddingGradient,
    IReadOnlyList<SublayerPrediction> Sublayers, double LogitVariance)
{
    /// <summary>One entry per block: the stream after its feed-forward sublayer.</summary>
    public IEnumerable<SublayerPrediction> Layers => Sublayers.Where(sublayer => sublayer.Kind == SublayerKind.FeedForward);
}

/// <summary>
/// Per-sublayer forward variance, token correlation and gradient variance of a Pre-LN, Post-LN or norm-free stack, by
/// chaining the component formulas (dslm-theory.md 2) on token kernels (<see cref="TokenKernel"/>: the second moment of
/// every pair of positions): embedding (2.8), LayerNorm (2.4), the attention sublayer (<see cref="KernelAttention"/>:
/// 2.7 per position, uniform bidirectional or causal attention, E-SPA's shaped A_l, a per-position rescale), the
/// feed-forward block (2.10) and the residual combine (2.9), forward from the embedding and backward from the final
/// LayerNorm. This is the mechanism of section 3: each LN divides the gradient by its input variance, so a growing
/// Pre-LN stream (~1 + c n) makes gradients fall as 1/n toward the output, and Post-LN compounds (1 + gain) / (1 + var)
/// per sublayer; attention without shaping pulls r to 1 (rank collapse, 2.7). Bidirectional attention over
/// exchangeable tokens keeps the kernel in its two-number form, so that case costs what the scalar chain costs; causal
/// or shaped attention costs O(T^2) per sublayer (O(T^3) for E-SPA) and keeps two T x T kernels per block for the
/// backward pass. Attention back-propagates through V and through the logits into Q and K (<see cref="KernelAttention"/>);
/// the gradient at the top is an input.
/// </summary>
public static class DepthRecursion
{
    /// <summary>The predictions for a model, an init and a norm placement.</summary>
    /// <param name="shape">The model, including causal or bidirectional attention and the probability dropout.</param>
    /// <param name="init">The init: stds, residual scaling, logit scale, and the optional rescale, E-SPA shaping and
    /// TAT activation.</param>
    /// <param name="norm">Pre-LN, Post-LN or none.</param>
    /// <param name="tokenCorrelation">The data's embedding token correlation before dropout (the correlation of the
    /// summed tables); the official 0.221 by default.</param>
    /// <param name="outputGradient">The gradient at the final LayerNorm's output; variance 1 and correlation 0 (independent
    /// targets per token) by default. Only ratios between layers are meaningful. The recursion takes it independent of
    /// the forward pass (mean-field backward analyses' gradient-independence assumption); a loss gradient whose common
    /// part across tokens points along the signal's own common part (a vanilla stack's head input) breaks that and grows
    /// toward the input far beyond the prediction (docs/theory.md, "Vanilla E-SPA stacks").</param>
    /// <param name="activation">The feed-forward activation; the plan's TAT leaky ReLU if it has one, else ReLU (the
    /// official code).</param>
    public static DepthPrediction Predict(TransformerShape shape, InitPlan init, NormPlacement norm,
        double tokenCorrelation = Components.Embedding.OfficialTokenCorrelation, GradientMoments? outputGradient = null,
        IMomentMap? activation = null) =>
        Predict(shape, init, norm, tokenCorrelation, outputGradient, activation, InOrder(shape, init), forwardOnly: false);

    /// <summary>The forward pass alone: only the embedding and the logit variance of the result are filled in.</summary>
    internal static DepthPrediction PredictForward(TransformerShape shape, InitPlan init, NormPlacement norm, double tokenCorrelation,
        IMomentMap? activation) =>
        Predict(shape, init, norm, tokenCorrelation, null, activation, InOrder(shape, init), forwardOnly: true);

    /// <summary>Each layer's pattern from <see cref="AttentionPatterns"/>, in layer order.</summary>
    private static Func<int, TokenKernel, AttentionPattern> InOrder(TransformerShape shape, InitPlan init)
    {
        var patterns = AttentionPatterns(shape, init).GetEnumerator();
        return (_, _) =>
        {
            patterns.MoveNext();
            return patterns.Current;
        };
    }

    /// <summary>
    /// The recursion with the attention pattern of each layer chosen from that layer's attention input kernel (the
    /// position-aware scheme sets its rescale there); with <paramref name="forwardOnly"/> it stops after the forward
    /// pass, and only the embedding and the logit variance of the result are filled in.
    /// </summary>
    internal static DepthPrediction Predict(TransformerShape shape, InitPlan init, NormPlacement norm, double tokenCorrelation,
        GradientMoments? outputGradient, IMomentMap? activation, Func<int, TokenKernel, AttentionPattern> patternFor, bool forwardOnly)
    {
        int d = shape.ModelWidth, tokens = shape.SequenceLength;
        double p = shape.Dropout;
        activation ??= init.FeedForwardNegativeSlope is { } slope ? new ScaledLeakyRelu(slope) : new Relu();
        var residual = init.Residual;
        var embedding = Components.Embedding.Output(init.EmbeddingTables, init.EmbeddingStd, p, tokenCorrelation);
        var feedForward = new PairwiseKernelMap(new FeedForwardBlock(d, shape.FeedForwardWidth, Square(init.FeedForwardInputStd),
            Square(init.FeedForwardOutputStd), p, activation));
        var steps = new List<Step>(2 * shape.Layers);
        var stream = TokenKernel.FromMoments(tokens, embedding);
        double streamFluctuation = 1; // the embedding rows: Gaussian-like per-token norms
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            foreach (var kind in new[] { SublayerKind.Attention, SublayerKind.FeedForward })
            {
                var normed = norm == NormPlacement.None ? stream
                    : new PairwiseKernelMap(new LayerNorm(d) { NormFluctuation = streamFluctuation }).Forward(stream);
                IKernelMap branch = kind == SublayerKind.FeedForward ? feedForward
                    : new KernelAttention(d, patternFor(layer, normed), Square(init.QueryKeyStd), Square(init.ValueStd[layer]),
                        Square(init.OutputStd[layer]), shape.AttentionDropout, p)
                    {
                        InputNormFluctuation = norm == NormPlacement.None ? streamFluctuation : 0,
                    };
                var branchOutput = branch.Forward(normed);
                var skip = norm == NormPlacement.PostLayerNorm ? normed : stream;
                var output = Combine(residual, skip, branchOutput);
                streamFluctuation = residual.NormFluctuation(skip.MeanVariance,
                    norm == NormPlacement.PostLayerNorm ? 0 : streamFluctuation, branchOutput.MeanVariance);
                steps.Add(new Step(layer, kind, branch, stream.Diagonal(), forwardOnly ? null : normed, branchOutput.Summary(), branchOutput.Diagonal(),
                    output.Summary(), output.Diagonal()));
                stream = output;
            }
        }

        // Logits = scale * LN(h) E^T with the tied token table: d * scale^2 * Var(E) * Var(LN(h)) (dslm-theory.md 4.1),
        // where Var(LN(h)) = 1, or the final stream's variance without a final LN.
        double finalVariance = norm == NormPlacement.None ? stream.MeanVariance : 1;
        double logitVariance = d * Square(init.LogitScale) * Square(init.EmbeddingStd) * finalVariance;
        if (forwardOnly) return new DepthPrediction(embedding, default, [], logitVariance);
        var predictions = new SublayerPrediction[steps.Count];
        var top = TokenKernel.FromMoments(tokens, new SignalMoments(0, (outputGradient ?? new GradientMoments(1, 0)).Variance,
            (outputGradient ?? new GradientMoments(1, 0)).Correlation));
        var gradient = norm == NormPlacement.None ? top : LayerNormBackward(stream.Diagonal(), top);
        for (int i = steps.Count - 1; i >= 0; i--)
        {
            var step = steps[i];
            predictions[i] = new SublayerPrediction(step.Layer, step.Kind, step.Output, gradient.GradientSummary(), step.BranchSummary)
            {
                PositionVariance = step.OutputDiagonal,
                PositionGradientVariance = gradient.Diagonal(),
                BranchPositionVariance = step.BranchDiagonal,
            };
            double skip = residual.Skip * residual.Skip, branchFactor = residual.Branch * residual.Branch;
            var toSkip = gradient.Map((_, _, entry, _) => skip * entry);
            var toNormed = step.Branch.Backward(step.Normed!, gradient.Map((_, _, entry, _) => branchFactor * entry));
            gradient = norm switch
            {
                NormPlacement.PreLayerNorm => Add(toSkip, LayerNormBackward(step.InputDiagonal, toNormed)),
                NormPlacement.PostLayerNorm => LayerNormBackward(step.InputDiagonal, Add(toSkip, toNormed)),
                _ => Add(toSkip, toNormed),
            };
        }

        return new DepthPrediction(embedding, gradient.GradientSummary(), predictions, logitVariance);
    }

    /// <summary>
    /// Each layer's mean attention matrix: E-SPA's A_l when the plan shapes attention (spa-theory.md 2.1), else uniform
    /// over the visible keys with the plan's per-position rescale.
    /// </summary>
    internal static IEnumerable<AttentionPattern> AttentionPatterns(TransformerShape shape, InitPlan init)
    {
        if (init.AttentionShapingFinalGamma is { } finalGamma)
        {
            foreach (var layer in ExponentialSignalPropagation.Build(shape.SequenceLength, shape.Layers, finalGamma, shape.Causal))
                yield return AttentionPattern.Dense(layer.Attention, shape.Causal);
            yield break;
        }
        for (int layer = 0; layer < shape.Layers; layer++)
            yield return AttentionPattern.Uniform(shape.SequenceLength, shape.Causal, init.AttentionRescale?[layer]);
    }

    /// <summary>The residual combine lam^2 K_x + beta^2 K_f of two independent zero-mean signals (dslm-theory.md 2.9).</summary>
    internal static TokenKernel Combine(ResidualScaling residual, TokenKernel skip, TokenKernel branch)
    {
        double skipSquared = residual.Skip * residual.Skip, branchSquared = residual.Branch * residual.Branch;
        return TokenKernel.Combine(skip, branch, (x, f) => skipSquared * x + branchSquared * f);
    }

    /// <summary>A tensor read by two paths: the two gradient contributions are uncorrelated at init, so kernels add.</summary>
    private static TokenKernel Add(TokenKernel a, TokenKernel b) => TokenKernel.Combine(a, b, (x, y) => x + y);

    /// <summary>
    /// LayerNorm's backward G[t, u] / sqrt(s2_t s2_u) (dslm-theory.md 2.4: g2 / s2 for one token) from the input's
    /// per-position variances alone, so the backward pass keeps T numbers per LN rather than its input kernel.
    /// </summary>
    private static TokenKernel LayerNormBackward(double[] inputVariance, TokenKernel gradient)
    {
        if (gradient.IsExchangeable && inputVariance.All(v => v == inputVariance[0]))
            return gradient.Map((_, _, entry, _) => entry / inputVariance[0]);
        int n = gradient.Tokens;
        var dense = gradient.DenseCopy();
        for (int t = 0; t < n; t++)
            for (int u = 0; u < n; u++)
                dense[t * n + u] /= Math.Sqrt(inputVariance[t] * inputVariance[u]);
        return TokenKernel.FromDense(n, dense);
    }

    private static double Square(double value) => value * value;

    /// <summary>One sublayer's forward state, kept for the backward pass and the report.</summary>
    private sealed record Step(int Layer, SublayerKind Kind, IKernelMap Branch, double[] InputDiagonal, TokenKernel? Normed,
        SignalMoments BranchSummary, double[] BranchDiagonal, SignalMoments Output, double[] OutputDiagonal);
}
