using DeepScaleLM.Theory.Components;
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
/// <param name="Stream">The residual stream after the sublayer's combine (for Post-LN, the next LayerNorm's input).</param>
/// <param name="StreamGradient">The gradient of the loss with respect to that same tensor.</param>
/// <param name="Branch">The sublayer's branch output f(LN(x)), before beta.</param>
public readonly record struct SublayerPrediction(int Layer, SublayerKind Kind, SignalMoments Stream, GradientMoments StreamGradient,
    SignalMoments Branch);

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
/// Per-sublayer forward variance, token correlation and gradient variance of a Pre-LN or Post-LN stack, by chaining the
/// component formulas (dslm-theory.md 2): embedding (2.8), LayerNorm (2.4), the attention and feed-forward blocks
/// (2.10, from 2.1-2.7) and the residual combine (2.9), forward from the embedding and backward from the final
/// LayerNorm. This is the mechanism of section 3: each LN divides the gradient by its input variance, so a growing
/// Pre-LN stream (~1 + c n) makes gradients fall as 1/n toward the output, and Post-LN compounds (1 + gain) / (1 + var)
/// per sublayer. Inherited limits: attention back-propagates through V only (2.7); the gradient at the top is an input.
/// </summary>
public static class DepthRecursion
{
    /// <summary>The predictions for a model, an init and a norm placement.</summary>
    /// <param name="shape">The model.</param>
    /// <param name="init">The init: stds, residual scaling, logit scale.</param>
    /// <param name="norm">Pre-LN or Post-LN.</param>
    /// <param name="tokenCorrelation">The embedding tables' token correlation before dropout; the official 0.221 by default.</param>
    /// <param name="outputGradient">The gradient at the final LayerNorm's output; variance 1 and correlation 0 (independent
    /// targets per token) by default. Only ratios between layers are meaningful.</param>
    /// <param name="activation">The feed-forward activation; ReLU (the official code) by default.</param>
    public static DepthPrediction Predict(TransformerShape shape, InitPlan init, NormPlacement norm,
        double tokenCorrelation = Embedding.OfficialTokenCorrelation, GradientMoments? outputGradient = null, IMomentMap? activation = null)
    {
        int d = shape.ModelWidth;
        double p = shape.Dropout;
        activation ??= new Relu();
        var layerNorm = new LayerNorm(d);
        var residual = init.Residual;
        var embedding = Embedding.Output(init.EmbeddingTables, init.EmbeddingStd, p, tokenCorrelation);

        var steps = new List<Step>(2 * shape.Layers);
        var stream = embedding;
        for (int layer = 0; layer < shape.Layers; layer++)
        {
            var attention = new AttentionBlock(d, shape.Heads, Square(init.QueryKeyStd), Square(init.ValueStd[layer]),
                Square(init.OutputStd[layer]), shape.SequenceLength, p);
            var feedForward = new FeedForwardBlock(d, shape.FeedForwardWidth, Square(init.FeedForwardInputStd),
                Square(init.FeedForwardOutputStd), p, activation);
            foreach (var (kind, branch) in new[] { (SublayerKind.Attention, (IMomentMap)attention), (SublayerKind.FeedForward, feedForward) })
            {
                var normed = layerNorm.Forward(stream);
                var branchOutput = branch.Forward(normed);
                var output = residual.Forward(norm == NormPlacement.PreLayerNorm ? stream : normed, branchOutput);
                steps.Add(new Step(layer, kind, branch, stream, normed, branchOutput, output));
                stream = output;
            }
        }

        var predictions = new SublayerPrediction[steps.Count];
        var gradient = layerNorm.Backward(stream, outputGradient ?? new GradientMoments(1, 0));
        for (int i = steps.Count - 1; i >= 0; i--)
        {
            var step = steps[i];
            predictions[i] = new SublayerPrediction(step.Layer, step.Kind, step.Output, gradient, step.BranchOutput);
            var (toSkip, toBranch) = residual.Backward(gradient);
            var toNormed = step.Branch.Backward(step.Normed, toBranch);
            gradient = norm == NormPlacement.PreLayerNorm
                ? toSkip + layerNorm.Backward(step.Input, toNormed)
                : layerNorm.Backward(step.Input, toSkip + toNormed);
        }

        // Logits = scale * LN(h) E^T with the tied token table: d * scale^2 * Var(E) (dslm-theory.md 4.1).
        double logitVariance = d * Square(init.LogitScale) * Square(init.EmbeddingStd);
        return new DepthPrediction(embedding, gradient, predictions, logitVariance);
    }

    private static double Square(double value) => value * value;

    /// <summary>One sublayer's forward moments, kept for the backward pass.</summary>
    private sealed record Step(int Layer, SublayerKind Kind, IMomentMap Branch, SignalMoments Input, SignalMoments Normed,
        SignalMoments BranchOutput, SignalMoments Output);
}
