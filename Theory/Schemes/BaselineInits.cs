using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// The Xavier baseline the DSLM authors compare against (dslm-theory.md 3, `--xavier-flag-sigma`): embeddings
/// sqrt(1/d); Q, K and V sqrt(2 / (d + d_head)); attention output sqrt(1/d); feed-forward in and out
/// sqrt(2 / (d + hidden)) (= sqrt(2 / (5d)) at hidden 4d); plain residuals; no logit pre-scale.
/// </summary>
public static class XavierInit
{
    /// <summary>The Xavier baseline for a model (dslm-theory.md 3).</summary>
    /// <param name="shape">The model.</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    public static InitPlan Plan(TransformerShape shape, int embeddingTables = 2)
    {
        double d = shape.ModelWidth;
        double projection = Math.Sqrt(2 / (d + shape.HeadWidth));
        double feedForward = Math.Sqrt(2 / (d + shape.FeedForwardWidth));
        return new InitPlan("xavier", embeddingTables, Math.Sqrt(1 / d), projection, Repeat(projection, shape.Layers),
            Repeat(Math.Sqrt(1 / d), shape.Layers), feedForward, feedForward, ResidualScaling.Plain, 1);
    }

    internal static double[] Repeat(double value, int layers) => Enumerable.Repeat(value, layers).ToArray();
}

/// <summary>
/// DeepNet (Wang et al. 2022, "DeepNet: Scaling Transformers to 1,000 Layers") for a one-stack (encoder-only or
/// decoder-only) model of N blocks: Post-LN x_{l+1} = LN(alpha x + f(x)) with alpha = (2N)^(1/4), and Xavier-normal
/// weights (std gain sqrt(2 / (fan-in + fan-out)) on the full projection matrices) with gain beta = (8N)^(-1/4) for
/// V, the attention output and both feed-forward projections, gain 1 for Q and K. DeepNet leaves the embedding to
/// the base model; this uses the Xavier baseline's sqrt(1/d).
/// </summary>
public static class DeepNetInit
{
    /// <summary>alpha = (2N)^(1/4), the skip factor for a one-stack model of N blocks.</summary>
    /// <param name="layers">N, the number of blocks.</param>
    public static double SkipScale(int layers) => Math.Pow(2.0 * layers, 0.25);

    /// <summary>beta = (8N)^(-1/4), the Xavier gain of V, output and feed-forward weights for a one-stack model.</summary>
    /// <param name="layers">N, the number of blocks.</param>
    public static double WeightGain(int layers) => Math.Pow(8.0 * layers, -0.25);

    /// <summary>The DeepNet init for a one-stack model.</summary>
    /// <param name="shape">The model.</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    public static InitPlan Plan(TransformerShape shape, int embeddingTables = 2)
    {
        double d = shape.ModelWidth, gain = WeightGain(shape.Layers);
        double square = Math.Sqrt(2 / (d + d));
        double feedForward = gain * Math.Sqrt(2 / (d + shape.FeedForwardWidth));
        var valueOutput = XavierInit.Repeat(gain * square, shape.Layers);
        return new InitPlan("deepnet", embeddingTables, Math.Sqrt(1 / d), square, valueOutput, valueOutput,
            feedForward, feedForward, new ResidualScaling(SkipScale(shape.Layers), 1), 1);
    }
}

/// <summary>Every weight N(0, std^2), 0.02 by default (the GPT-2/BERT convention), plain residuals.</summary>
public static class SimpleInit
{
    /// <summary>The simple init for a model.</summary>
    /// <param name="shape">The model.</param>
    /// <param name="std">The std of every weight.</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    public static InitPlan Plan(TransformerShape shape, double std = 0.02, int embeddingTables = 2) =>
        new("simple", embeddingTables, std, std, XavierInit.Repeat(std, shape.Layers), XavierInit.Repeat(std, shape.Layers),
            std, std, ResidualScaling.Plain, 1);
}
