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
    double LogitScale);
