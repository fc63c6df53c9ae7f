using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// What an init scheme decides for a model: the std of every kind of weight (normal, mean 0; biases 0; LayerNorm
/// gamma 1, beta 0), the residual scaling, and the pre-scale of the final hidden state before the tied-embedding
/// logits. Plain numbers, so Layers can read its init from here without Theory knowing about tensors.
/// </summary>
/// <param name="Scheme">The scheme's name.</param>
/// <param name="EmbeddingTables">How many embedding tables are summed (each with <paramref name="EmbeddingStd"/>).</param>
/// <param name="EmbeddingStd">The std of every embedding table.</param>
/// <param name="QueryKeyStd">The std of the query and key projections.</param>
/// <param name="ValueStd">The std of the value projection, per layer.</param>
/// <param name="OutputStd">The std of the attention output projection, per layer.</param>
/// <param name="FeedForwardInputStd">The std of the feed-forward d -&gt; hidden projection.</param>
/// <param name="FeedForwardOutputStd">The std of the feed-forward hidden -&gt; d projection.</param>
/// <param name="Residual">The residual combine lam x + beta f(x) of every sublayer.</param>
/// <param name="LogitScale">The factor on the final hidden state before the tied-embedding matmul.</param>
/// <remarks>
/// The optional members below default to "absent", which is the plain transformer every scheme before them describes:
/// Gaussian weights, ReLU feed-forward, softmax attention with no bias and no per-position rescale.
/// </remarks>
public sealed record InitPlan(
    string Scheme,
    int EmbeddingTables,
    double EmbeddingStd,
    double QueryKeyStd,
    IReadOnlyList<double> ValueStd,
    IReadOnlyList<double> OutputStd,
    double FeedForwardInputStd,
    double FeedForwardOutputStd,
    ResidualScaling Residual,
    double LogitScale)
{
    /// <summary>
    /// r0, the embedding token correlation (before the embedding dropout) the scheme was designed for: the official
    /// 0.221 for DSLM (dslm-theory.md 2.8), the data's estimate for the position-aware scheme; null when the scheme does
    /// not depend on it. Recorded so a prediction or a simulation can say which r0 the init assumed.
    /// </summary>
    public double? TokenCorrelation { get; init; }

    /// <summary>
    /// A per-layer, per-query-position factor on the attention output before the output projection, [layer][position],
    /// the op contract's AttentionOptions.Rescale (E-SPA's D_l slot): the position-aware scheme's correction that gives
    /// every position, not only the average, a unit-variance attention sublayer; null for none (a factor of 1).
    /// Each inner list has the sequence length the plan was made for.
    /// </summary>
    public IReadOnlyList<IReadOnlyList<double>>? AttentionRescale { get; init; }

    /// <summary>
    /// E-SPA attention shaping (spa-theory.md 2.1-2.2): gamma_L, the final layer's kernel decay. When set, layer l
    /// (from 0) uses zero queries (<see cref="QueryKeyStd"/> = 0), the bias B_(l+1) and the rescale D_(l+1) of
    /// <see cref="ExponentialSignalPropagation.Build"/> over the model's sequence length and layer count (Cholesky
    /// factors for causal attention, symmetric roots for bidirectional); null for plain softmax attention.
    /// </summary>
    public double? AttentionShapingFinalGamma { get; init; }

    /// <summary>
    /// The feed-forward activation's negative slope a when it is TAT's output_scale * leaky_relu(x, a) with
    /// output_scale = sqrt(2 / (1 + a^2)) (spa-theory.md 3); null for ReLU.
    /// </summary>
    public double? FeedForwardNegativeSlope { get; init; }

    /// <summary>
    /// True when V, the attention output and both feed-forward projections are SUO orthogonal matrices
    /// (spa-theory.md 4) rather than Gaussian; their stds above are then the root mean square of an entry
    /// (1 / sqrt(fan-in)), which is what the moment recursion sees.
    /// </summary>
    public bool OrthogonalWeights { get; init; }
}
