using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// The per-layer V/O init of the official `sigma_attn_v_out` recursion (dslm-theory.md 4.1).
/// </summary>
/// <param name="Std">The V and attention-output std of each layer.</param>
/// <param name="InputCorrelation">r of the residual stream at each layer's input (the r each std was computed from).</param>
/// <param name="FinalCorrelation">r of the residual stream after the last layer.</param>
/// <param name="FinalVariance">The residual-stream variance after the last layer (1 when lam^2 + beta^2 = 1).</param>
public sealed record ValueOutputSchedule(IReadOnlyList<double> Std, IReadOnlyList<double> InputCorrelation,
    double FinalCorrelation, double FinalVariance);

/// <summary>
/// The DeepScaleLM init as implemented in the official code (dslm-theory.md 4.1): every block output has unit variance
/// at initialisation, and lam^2 + beta^2 = 1 keeps the residual stream at unit variance (4.2).
/// </summary>
public static class DslmInit
{
    /// <summary>
    /// sqrt((1 - p) / tables): the summed tables have variance 1 - p and the embedding dropout brings it to 1
    /// (dslm-theory.md 4.1, 2.8). The official BERT sums three tables; a token + position decoder two.
    /// </summary>
    /// <param name="dropout">p, the embedding dropout.</param>
    /// <param name="tableCount">How many embedding tables are summed.</param>
    public static double EmbeddingStd(double dropout, int tableCount) => Math.Sqrt((1 - dropout) / tableCount);

    /// <summary>sqrt(1 / d) for the query and key projections (dslm-theory.md 4.1).</summary>
    /// <param name="modelWidth">d.</param>
    public static double QueryKeyStd(int modelWidth) => Math.Sqrt(1.0 / modelWidth);

    /// <summary>
    /// sqrt(sqrt((1 - p) / 2) / d) for both feed-forward projections: the ReLU block's variance 2 d^2 sf2^2 / (1 - p)
    /// is then 1 (dslm-theory.md 4.1, 2.10).
    /// </summary>
    /// <param name="modelWidth">d.</param>
    /// <param name="dropout">p, the hidden dropout.</param>
    public static double FeedForwardStd(int modelWidth, double dropout) => Math.Sqrt(Math.Sqrt((1 - dropout) / 2) / modelWidth);

    /// <summary>
    /// 1 / sqrt(d x embedding variance), applied to the final (LayerNorm-ed, unit-variance) hidden state before the
    /// tied-embedding matmul, so the logits have unit variance; the official code hard-codes the variance 0.3
    /// (dslm-theory.md 4.1).
    /// </summary>
    /// <param name="modelWidth">d.</param>
    /// <param name="embeddingVariance">The variance of the tied embedding table.</param>
    public static double LogitScale(int modelWidth, double embeddingVariance) => 1 / Math.Sqrt(modelWidth * embeddingVariance);

    /// <summary>
    /// sqrt(sqrt((1 - p) / r) / d) for V and the attention output: the long-sequence attention block's variance
    /// d^2 sigma^4 r / (1 - p) is then 1 (dslm-theory.md 4.1, 2.10).
    /// </summary>
    /// <param name="modelWidth">d.</param>
    /// <param name="dropout">p, the hidden dropout.</param>
    /// <param name="correlation">r of the residual stream at the layer's input.</param>
    public static double ValueOutputStd(int modelWidth, double dropout, double correlation) =>
        Math.Sqrt(Math.Sqrt((1 - dropout) / correlation) / modelWidth);

    /// <summary>
    /// The official `sigma_attn_v_out` recursion (dslm-theory.md 4.1), step for step: start at r = r0 (1 - p), v = 1;
    /// per layer take the V/O std from the current r, then combine (2.9) the attention branch (variance 1,
    /// correlation 1 - p) and the ReLU feed-forward branch (variance 1, correlation (1 - p)(r + (sqrt(1 - r^2) -
    /// r arccos r) / pi)), each with lam and beta.
    /// </summary>
    /// <param name="modelWidth">d.</param>
    /// <param name="dropout">p.</param>
    /// <param name="layers">The number of blocks.</param>
    /// <param name="residual">lam and beta; <see cref="ResidualScaling.Plain"/> for "no lam/beta".</param>
    /// <param name="tokenCorrelation">r0 before the embedding dropout; the official code hard-codes 0.221.</param>
    public static ValueOutputSchedule ValueOutputRecursion(int modelWidth, double dropout, int layers, ResidualScaling residual,
        double tokenCorrelation = Embedding.OfficialTokenCorrelation)
    {
        var std = new double[layers];
        var inputCorrelation = new double[layers];
        var stream = new SignalMoments(0, 1, tokenCorrelation * (1 - dropout));
        var attention = new SignalMoments(0, 1, AttentionBlock.OfficialOutputCorrelation(dropout));
        for (int layer = 0; layer < layers; layer++)
        {
            inputCorrelation[layer] = stream.Correlation;
            std[layer] = ValueOutputStd(modelWidth, dropout, stream.Correlation);
            stream = residual.Forward(stream, attention);
            var feedForward = new SignalMoments(0, 1, FeedForwardBlock.OfficialOutputCorrelation(stream.Correlation, dropout));
            stream = residual.Forward(stream, feedForward);
        }
        return new ValueOutputSchedule(std, inputCorrelation, stream.Correlation, stream.Variance);
    }

    /// <summary>
    /// The whole official init for a model (dslm-theory.md 4.1), with the residual scaling chosen by
    /// <paramref name="depthScaling"/> (4.2; null for the defaults of <see cref="ResidualDepthScaling"/>).
    /// </summary>
    /// <param name="shape">The model.</param>
    /// <param name="depthScaling">How beta^2 follows depth; null for k = 2, alpha = 1, N = sublayers.</param>
    /// <param name="embeddingTables">How many embedding tables are summed (2: token + position).</param>
    /// <param name="tokenCorrelation">r0 before the embedding dropout; the official code hard-codes 0.221.</param>
    public static InitPlan Plan(TransformerShape shape, ResidualDepthScaling? depthScaling = null, int embeddingTables = 2,
        double tokenCorrelation = Embedding.OfficialTokenCorrelation) =>
        Plan(shape, (depthScaling ?? new ResidualDepthScaling()).For(shape.Layers), embeddingTables, tokenCorrelation);

    /// <summary>The whole official init for a model with a given residual scaling (dslm-theory.md 4.1).</summary>
    /// <param name="shape">The model.</param>
    /// <param name="residual">lam and beta, e.g. <see cref="ResidualScaling.OfficialDeepScaleLM"/>.</param>
    /// <param name="embeddingTables">How many embedding tables are summed (2: token + position).</param>
    /// <param name="tokenCorrelation">r0 before the embedding dropout; the official code hard-codes 0.221.</param>
    public static InitPlan Plan(TransformerShape shape, ResidualScaling residual, int embeddingTables = 2,
        double tokenCorrelation = Embedding.OfficialTokenCorrelation)
    {
        double p = shape.Dropout, embeddingStd = EmbeddingStd(p, embeddingTables);
        var valueOutput = ValueOutputRecursion(shape.ModelWidth, p, shape.Layers, residual, tokenCorrelation).Std;
        double feedForward = FeedForwardStd(shape.ModelWidth, p);
        return new InitPlan("dslm", embeddingTables, embeddingStd, QueryKeyStd(shape.ModelWidth), valueOutput, valueOutput,
            feedForward, feedForward, residual, LogitScale(shape.ModelWidth, embeddingStd * embeddingStd))
        {
            TokenCorrelation = tokenCorrelation,
        };
    }
}
