namespace DeepScaleLM.Training.Data;

/// <summary>A contiguous range of a token stream.</summary>
/// <param name="Start">First token.</param>
/// <param name="Count">Number of tokens.</param>
public readonly record struct TokenRange(long Start, long Count);

/// <summary>
/// The train/validation split: the last <c>validationFraction</c> of the token stream (rounded down to whole tokens)
/// is validation, everything before it is training. A contiguous tail, rather than blocks scattered by a hash, keeps
/// every training window from overlapping a validation window (no text leaks across the split), needs no parameters
/// beyond the fraction, and is the same on every machine by construction.
/// </summary>
/// <param name="Train">Tokens [0, Train.Count).</param>
/// <param name="Validation">The tail after the training range.</param>
public readonly record struct DataSplit(TokenRange Train, TokenRange Validation)
{
    /// <summary>Splits <paramref name="count"/> tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The fraction is outside [0, 1) or the count is negative.</exception>
    /// <exception cref="ArgumentException">The training part would hold no tokens.</exception>
    public static DataSplit Of(long count, double validationFraction)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (!(validationFraction >= 0 && validationFraction < 1))
            throw new ArgumentOutOfRangeException(nameof(validationFraction), $"validation fraction {validationFraction} is not in [0, 1)");
        long validation = (long)Math.Floor(count * validationFraction);
        long train = count - validation;
        if (train <= 0) throw new ArgumentException($"{count} tokens leave nothing to train on", nameof(count));
        return new DataSplit(new TokenRange(0, train), new TokenRange(train, validation));
    }
}
