using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Training.Data;

/// <summary>Unigram statistics of a token file, for the data-aware init (open-problems.md, "The goal beyond the paper").</summary>
public static class UnigramStatistics
{
    /// <summary>At most this many tokens are counted: sum_i p_i^2 settles long before (its sampling error is ~1/sqrt(n)).</summary>
    public const long MaxCountedTokens = 1L << 26;

    /// <summary>
    /// sum_i p_i^2, the probability that two tokens drawn from the range's unigram distribution are the same, counted
    /// over the range's first <see cref="MaxCountedTokens"/> tokens.
    /// </summary>
    /// <param name="data">The token file.</param>
    /// <param name="range">The tokens to count (e.g. the training split).</param>
    /// <exception cref="ArgumentException">The range is empty.</exception>
    public static double CollisionProbability(TokenFileReader data, TokenRange range)
    {
        ArgumentNullException.ThrowIfNull(data);
        long count = Math.Min(range.Count, MaxCountedTokens);
        if (count <= 0) throw new ArgumentException("no tokens to count in an empty range", nameof(range));
        var counts = new long[data.VocabularySize];
        var chunk = new int[1 << 20];
        for (long done = 0; done < count; done += chunk.Length)
        {
            var span = chunk.AsSpan(0, (int)Math.Min(chunk.Length, count - done));
            data.Read(range.Start + done, span);
            foreach (int token in span) counts[token]++;
        }
        return PositionAwareInit.CollisionProbability(counts);
    }
}
