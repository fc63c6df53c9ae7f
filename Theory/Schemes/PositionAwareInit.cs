using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Kernels;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// The data- and position-aware DSLM variant of open-problems.md ("The goal beyond the paper"), offered beside the
/// official <see cref="DslmInit"/> and never replacing it. Three changes, everything else (embedding, Q/K, FFN,
/// lam/beta, logit scale) as the official scheme:
/// <list type="number">
/// <item>r0 comes from the data: the summed embedding tables correlate two positions only through the token table,
/// which holds the same row with probability sum_i p_i^2 (the unigram collision probability; dslm-theory.md 2.8), so
/// r0 = sum_i p_i^2 x (token table variance / summed variance) = sum_i p_i^2 / tables (the position table's rows
/// differ at different positions). For i.i.d. bytes 1/256 / 2 = 0.002 where the official code assumes 0.221.</item>
/// <item>V and the attention output keep unit gain (std sqrt(1/d) each) and the attention sublayer is normalised where
/// its variance is actually decided: the kernel recursion's attention moments with their sequence-length terms
/// (dslm-theory.md 2.7 per position, <see cref="KernelAttention"/>) give the sublayer's output variance v_l(t) at
/// every position t, and the per-layer per-position rescale rho_l(t) = 1 / sqrt(v_l(t)) on the attention output (the
/// op contract's rescale slot) makes it exactly 1 at every position; every term of v_l(t) scales with rho_l(t)^2, so
/// one pass suffices. For causal attention v_l(t) ~ r + (1 - r) exp(ss2) / (t + 1): early positions average few
/// tokens and need rho &lt; 1, late ones rho ~ 1 / sqrt(r).</item>
/// <item>The rescale is computed layer by layer from the r the stream actually has there (the recursion's forward
/// pass), rather than from the official schedule's long-sequence model (attention r_out = 1 - p).</item>
/// </list>
/// With every branch at unit variance per position and lam^2 + beta^2 = 1 every LayerNorm input keeps unit variance,
/// so the LN backward factor 1/s2 is 1 at every layer (the mechanism of dslm-theory.md 4.1).
/// </summary>
public static class PositionAwareInit
{
    /// <summary>r0 = sum_i p_i^2 / tables: the correlation of the summed tables between two positions (see the class remarks).</summary>
    /// <param name="collisionProbability">sum_i p_i^2 over the token unigram distribution.</param>
    /// <param name="tables">How many equal-variance tables are summed; only the token table is shared between positions.</param>
    public static double TokenCorrelation(double collisionProbability, int tables) =>
        collisionProbability is >= 0 and <= 1 && tables >= 1
            ? collisionProbability / tables
            : throw new ArgumentOutOfRangeException(nameof(collisionProbability), $"Need a probability and at least one table (got {collisionProbability}, {tables}).");

    /// <summary>sum_i p_i^2 for unigram counts (e.g. a corpus's token histogram, or a tokenizer's frequencies).</summary>
    /// <param name="counts">How often each token occurs.</param>
    /// <exception cref="ArgumentException">A count is negative or all are zero.</exception>
    public static double CollisionProbability(IEnumerable<long> counts)
    {
        double total = 0, squares = 0;
        foreach (long count in counts)
        {
            if (count < 0) throw new ArgumentException($"Token counts are non-negative; got {count}.", nameof(counts));
            total += count;
            squares += (double)count * count;
        }
        return total > 0 ? squares / (total * total) : throw new ArgumentException("Token counts sum to zero.", nameof(counts));
    }

    /// <summary>The position-aware init for a model.</summary>
    /// <param name="shape">The model; causal or bidirectional, any sequence length.</param>
    /// <param name="norm">Pre-LN or Post-LN (the rescale depends on where the LN sits).</param>
    /// <param name="tokenCorrelation">r0 of the data, e.g. <see cref="TokenCorrelation"/> of its unigram statistics.</param>
    /// <param name="residual">lam and beta; null for the official depth scaling (k = 2, N = sublayers, dslm-theory.md 4.2).</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    /// <exception cref="ArgumentException"><paramref name="norm"/> is none: the scheme relies on the LayerNorms.</exception>
    public static InitPlan Plan(TransformerShape shape, NormPlacement norm, double tokenCorrelation,
        ResidualScaling? residual = null, int embeddingTables = 2)
    {
        if (norm == NormPlacement.None)
            throw new ArgumentException("The position-aware scheme needs Pre-LN or Post-LN: it keeps every LayerNorm input at unit variance.", nameof(norm));
        var official = DslmInit.Plan(shape, residual ?? new ResidualDepthScaling().For(shape.Layers), embeddingTables);
        var unitGain = XavierInit.Repeat(Math.Sqrt(1.0 / shape.ModelWidth), shape.Layers);
        var unscaled = official with { Scheme = "dslm-position", ValueStd = unitGain, OutputStd = unitGain, TokenCorrelation = tokenCorrelation };
        var rescale = new IReadOnlyList<double>[shape.Layers];
        DepthRecursion.Predict(shape, unscaled, norm, tokenCorrelation, outputGradient: null, activation: null, (layer, normed) =>
        {
            var plain = AttentionPattern.Uniform(shape.SequenceLength, shape.Causal);
            var attention = new KernelAttention(shape.ModelWidth, plain, Square(unscaled.QueryKeyStd), Square(unitGain[layer]),
                Square(unitGain[layer]), shape.AttentionDropout, shape.Dropout) { InputNormFluctuation = 0 }; // reads a LayerNorm output
            rescale[layer] = attention.Forward(normed).Diagonal().Select(variance => 1 / Math.Sqrt(variance)).ToArray();
            return AttentionPattern.Uniform(shape.SequenceLength, shape.Causal, rescale[layer]);
        }, forwardOnly: true);
        return unscaled with { AttentionRescale = rescale };
    }

    private static double Square(double value) => value * value;
}
