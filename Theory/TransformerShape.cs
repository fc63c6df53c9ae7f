namespace DeepScaleLM.Theory;

/// <summary>The shape of a one-stack transformer as the theory needs it (dslm-theory.md 1 notation).</summary>
/// <param name="Layers">N, the number of blocks (each an attention and a feed-forward sublayer).</param>
/// <param name="ModelWidth">d, the hidden size.</param>
/// <param name="Heads">H, the number of attention heads; d must be a multiple of H.</param>
/// <param name="SequenceLength">L, the number of tokens attended over.</param>
/// <param name="Dropout">p, the dropout probability (embedding, attention probabilities and hidden).</param>
public sealed record TransformerShape(int Layers, int ModelWidth, int Heads, int SequenceLength, double Dropout)
{
    /// <summary>The feed-forward hidden width; 4d as in the official code (dslm-theory.md 2.10).</summary>
    public int FeedForwardWidth { get; init; } = 4 * ModelWidth;

    /// <summary>
    /// Causal attention (position t sees tokens 0..t, a decoder) rather than bidirectional (every position sees all L
    /// tokens, the official BERT). Bidirectional by default.
    /// </summary>
    public bool Causal { get; init; }

    /// <summary>
    /// Dropout on the attention probabilities. The official code uses the hidden dropout p there (so the default is
    /// <see cref="Dropout"/>); the op contract has no probability dropout, so a model built from it has 0.
    /// </summary>
    public double AttentionDropout { get; init; } = Dropout;

    /// <summary>dk = d / H, the width of one head.</summary>
    public int HeadWidth => ModelWidth / Heads;
}
