using DeepScaleLM.Native;

namespace DeepScaleLM.Training.Generation;

/// <summary>
/// Picks the next token from a row of logits: greedy at temperature 0, otherwise a draw from
/// <c>softmax(logits / temperature)</c> restricted to the <c>topK</c> largest logits (all of them when topK is 0).
/// The uniform number of draw <c>n</c> is Philox word <c>n</c> of (seed, offset 0), so a seed fixes the whole
/// generated text on every machine. Holds scratch for one vocabulary; not thread safe.
/// </summary>
public sealed class TokenSampler
{
    private readonly float[] _weights;
    private readonly int[] _order;
    private readonly float[] _logits;
    private readonly Comparison<int> _byLogit;
    private long _draws;

    /// <summary>A sampler for a vocabulary of <paramref name="vocabulary"/> tokens.</summary>
    /// <param name="vocabulary">Logits per row; at least 1.</param>
    /// <param name="temperature">0 for greedy (argmax); otherwise positive and finite.</param>
    /// <param name="topK">Keep only the k largest logits; 0 keeps all; at most <paramref name="vocabulary"/>.</param>
    /// <param name="seed">Fixes the draws.</param>
    /// <exception cref="ArgumentOutOfRangeException">A setting is outside its range.</exception>
    public TokenSampler(int vocabulary, float temperature, int topK, ulong seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 1);
        if (!(temperature >= 0) || float.IsInfinity(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be 0 (greedy) or positive and finite");
        if (topK < 0 || topK > vocabulary)
            throw new ArgumentOutOfRangeException(nameof(topK), topK, $"top-k must be 0 (all tokens) or 1..{vocabulary}");
        Temperature = temperature;
        TopK = topK == 0 ? vocabulary : topK;
        Seed = seed;
        _weights = new float[vocabulary];
        _order = new int[vocabulary];
        _logits = new float[vocabulary];
        _byLogit = (a, b) => _logits[a] != _logits[b] ? _logits[b].CompareTo(_logits[a]) : a.CompareTo(b);
    }

    /// <summary>0 means greedy.</summary>
    public float Temperature { get; }

    /// <summary>Candidates kept (the vocabulary size when no top-k cut was asked for).</summary>
    public int TopK { get; }

    /// <summary>The Philox key of the draws.</summary>
    public ulong Seed { get; }

    /// <summary>The next token for <paramref name="logits"/> (one row, the vocabulary long).</summary>
    /// <exception cref="ArgumentException">The row has the wrong length or holds a NaN.</exception>
    public int Next(ReadOnlySpan<float> logits)
    {
        if (logits.Length != _weights.Length)
            throw new ArgumentException($"a row of {logits.Length} logits, the sampler was made for {_weights.Length}", nameof(logits));
        int best = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNaN(logits[i])) throw new ArgumentException($"logit {i} is NaN", nameof(logits));
            if (logits[i] > logits[best]) best = i;
        }
        if (Temperature == 0) return best;

        // Candidates: with a top-k cut, indices sorted by logit, largest first, ties by index (deterministic).
        for (int i = 0; i < _order.Length; i++) _order[i] = i;
        if (TopK < _order.Length)
        {
            logits.CopyTo(_logits);
            Array.Sort(_order, _byLogit);
        }
        // softmax((l - max) / T) over the kept candidates, accumulated in double.
        double total = 0;
        for (int k = 0; k < TopK; k++)
        {
            int index = _order[k];
            _weights[k] = MathF.Exp((logits[index] - logits[best]) / Temperature);
            total += _weights[k];
        }
        double u = Philox.ToUniform(Philox.Word(Seed, 0, _draws++)) * total;
        double cumulative = 0;
        for (int k = 0; k < TopK; k++)
        {
            cumulative += _weights[k];
            if (u < cumulative) return _order[k];
        }
        return _order[TopK - 1];
    }
}
