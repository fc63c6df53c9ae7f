namespace DeepScaleLM.Training.Evaluation;

/// <summary>
/// The bits per byte of the best model that ignores context: the entropy of the text's own byte distribution,
/// <c>H = -sum_b p(b) log2 p(b)</c> with <c>p(b) = count(b) / total</c>. A language model that does not beat this
/// on validation text has learned nothing beyond byte frequencies. (Measured on the same text it is scored on,
/// so it is slightly optimistic for the baseline; a trained model still has to beat it.)
/// </summary>
public static class UnigramBaseline
{
    /// <summary>The byte entropy of <paramref name="bytes"/>, in bits per byte; 0 for a single repeated byte.</summary>
    /// <exception cref="ArgumentException"><paramref name="bytes"/> is empty.</exception>
    public static double BitsPerByte(ReadOnlySpan<byte> bytes)
    {
        if (bytes.IsEmpty) throw new ArgumentException("no bytes to measure", nameof(bytes));
        Span<long> counts = stackalloc long[256];
        counts.Clear();
        foreach (byte b in bytes) counts[b]++;
        return Entropy(counts, bytes.Length);
    }

    /// <summary>The byte entropy of a byte-level token stream (each token a byte value 0..255), in bits per byte.</summary>
    /// <exception cref="ArgumentException"><paramref name="tokens"/> is empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A token is not a byte value.</exception>
    public static double BitsPerByte(ReadOnlySpan<int> tokens)
    {
        if (tokens.IsEmpty) throw new ArgumentException("no tokens to measure", nameof(tokens));
        Span<long> counts = stackalloc long[256];
        counts.Clear();
        foreach (int token in tokens)
        {
            if ((uint)token > byte.MaxValue)
                throw new ArgumentOutOfRangeException(nameof(tokens), token, $"token {token} is not a byte value (0..255)");
            counts[token]++;
        }
        return Entropy(counts, tokens.Length);
    }

    private static double Entropy(ReadOnlySpan<long> counts, long total)
    {
        double bits = 0;
        foreach (long count in counts)
        {
            if (count == 0) continue; // 0 log 0 = 0
            double p = (double)count / total;
            bits -= p * Math.Log2(p);
        }
        return bits;
    }
}
