using System.Text;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Training.Evaluation;

/// <summary>
/// Sums what <see cref="EvaluationMetrics"/> needs over evaluation batches: the loss in nats, the scored target
/// tokens, and the UTF-8 bytes those targets encode. A target's bytes are those of the tokenizer decoding it alone
/// (1 for the byte tokenizer), cached per id, so the sum needs no decode per batch once every id has been seen.
/// </summary>
public sealed class EvaluationTotals
{
    private readonly ITokenizer _tokenizer;
    private readonly bool _bytes;
    private readonly int[] _tokenBytes;

    /// <summary>Empty totals for targets of <paramref name="tokenizer"/>.</summary>
    public EvaluationTotals(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
        _bytes = tokenizer is ByteTokenizer;
        _tokenBytes = _bytes ? [] : new int[tokenizer.VocabularySize];
        Array.Fill(_tokenBytes, -1);
    }

    /// <summary>Sum of the per-token losses so far, in nats.</summary>
    public double TotalNats { get; private set; }
    /// <summary>Targets scored so far (those not -100).</summary>
    public long TokenCount { get; private set; }
    /// <summary>UTF-8 bytes of those targets.</summary>
    public long ByteCount { get; private set; }

    /// <summary>Adds one batch: <paramref name="meanLoss"/> is the model's mean over the targets that are not -100.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A target is outside the tokenizer's vocabulary.</exception>
    public void Add(float meanLoss, ReadOnlySpan<int> targets)
    {
        int counted = 0;
        foreach (int target in targets)
        {
            if (target == -100) continue;
            counted++;
            ByteCount += _bytes ? 1 : TokenBytes(target);
        }
        // The model averages in double over the batch's targets; the product restores their sum.
        TotalNats += (double)meanLoss * counted;
        TokenCount += counted;
    }

    /// <summary>The metrics of everything added.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Nothing was scored yet, or the targets decode to no bytes.</exception>
    public EvaluationMetrics Metrics() => new(TotalNats, TokenCount, ByteCount);

    private int TokenBytes(int target)
    {
        if ((uint)target >= (uint)_tokenBytes.Length)
            throw new ArgumentOutOfRangeException(nameof(target), target, $"target {target} is outside the tokenizer's vocabulary of {_tokenBytes.Length}");
        if (_tokenBytes[target] < 0) _tokenBytes[target] = Encoding.UTF8.GetByteCount(_tokenizer.Decode([target]));
        return _tokenBytes[target];
    }
}
