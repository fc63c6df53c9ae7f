namespace DeepScaleLM.Training.Evaluation;

/// <summary>
/// Language-model evaluation numbers from a summed natural-log loss. With L = <see cref="TotalNats"/> (the sum of
/// per-token cross-entropies, ln base), N = <see cref="TokenCount"/> and B = <see cref="ByteCount"/> (the UTF-8
/// bytes those tokens encode):
/// <code>
/// mean loss       = L / N                 (nats per token)
/// perplexity      = exp(L / N)
/// bits per token  = L / (N ln 2)
/// bits per byte   = L / (B ln 2)          (comparable across tokenizers; equals bits per token for bytes)
/// </code>
/// </summary>
public readonly record struct EvaluationMetrics
{
    /// <summary>Metrics of <paramref name="tokenCount"/> tokens that encode <paramref name="byteCount"/> bytes.</summary>
    /// <param name="totalNats">Sum of the per-token losses in nats; finite and &gt;= 0.</param>
    /// <param name="tokenCount">Tokens scored; &gt;= 1.</param>
    /// <param name="byteCount">Bytes of text those tokens encode; &gt;= 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">A value is outside the range above; the message names it.</exception>
    public EvaluationMetrics(double totalNats, long tokenCount, long byteCount)
    {
        if (!double.IsFinite(totalNats) || totalNats < 0)
            throw new ArgumentOutOfRangeException(nameof(totalNats), totalNats, $"{nameof(totalNats)} must be finite and >= 0");
        ArgumentOutOfRangeException.ThrowIfLessThan(tokenCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(byteCount, 1);
        TotalNats = totalNats;
        TokenCount = tokenCount;
        ByteCount = byteCount;
    }

    /// <summary>Metrics for a byte-level tokenizer, where every token is one byte.</summary>
    /// <inheritdoc cref="EvaluationMetrics(double, long, long)"/>
    public static EvaluationMetrics ForBytes(double totalNats, long tokenCount) => new(totalNats, tokenCount, tokenCount);

    /// <summary>Sum of the per-token losses, in nats.</summary>
    public double TotalNats { get; }
    /// <summary>Tokens scored.</summary>
    public long TokenCount { get; }
    /// <summary>Bytes of text the tokens encode.</summary>
    public long ByteCount { get; }

    /// <summary>Mean loss per token, in nats: L / N.</summary>
    public double MeanLoss => TotalNats / TokenCount;
    /// <summary>exp(mean loss).</summary>
    public double Perplexity => Math.Exp(MeanLoss);
    /// <summary>L / (N ln 2).</summary>
    public double BitsPerToken => TotalNats / (TokenCount * Math.Log(2));
    /// <summary>L / (B ln 2).</summary>
    public double BitsPerByte => TotalNats / (ByteCount * Math.Log(2));
}
