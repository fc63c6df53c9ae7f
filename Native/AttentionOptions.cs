namespace DeepScaleLM.Native;

/// <summary>
/// How <see cref="Backend.Attention"/> mixes tokens. With <c>S = scale * Q K^T + bias + mask</c> per head and
/// <c>P = softmax(S)</c> row-wise, the attention matrix is <c>M = mixAlpha * I + mixBeta * P</c> when a mix is
/// given (Value-SkipInit, He et al. 2023 eq. 4) or <c>M = P</c> otherwise, and
/// <c>output[i] = rescale[i] * (M V)[i]</c> (E-SPA's location-dependent rescaling D_l; 1 when absent): the mix
/// is applied before the rescale. The softmax subtracts each row's maximum; a row whose scores are all -infinity
/// (every key masked) gets <c>P = 0</c> rather than NaN. Make one per layer and reuse it: it holds no per-call state.
/// </summary>
public sealed record AttentionOptions
{
    /// <summary>Number of heads; channels split as [heads, headDim].</summary>
    public required int Heads { get; init; }

    /// <summary>Mask keys after the query position (decoder self-attention): <c>P[i, j] = 0</c> for <c>j &gt; i</c>
    /// whatever the bias says there. Requires as many query as key tokens.</summary>
    public bool Causal { get; init; }

    /// <summary>Score scale; null means 1 / sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Optional additive score bias [queryTokens, keyTokens], shared by every head and batch entry
    /// (E-SPA's B_l, spa-theory 2.1). Entries are finite or -infinity (a key the query may not see); +infinity or
    /// NaN makes the row NaN. Not trained: it has no gradient.</summary>
    public Tensor? Bias { get; init; }

    /// <summary>Optional per-query-position output scale [queryTokens] (E-SPA's D_l).</summary>
    public Tensor? Rescale { get; init; }

    /// <summary>Optional per-head weight of the identity, [heads] (Value-SkipInit alpha, trainable). Given
    /// together with <see cref="MixBeta"/>; requires as many query as key tokens.</summary>
    public Tensor? MixAlpha { get; init; }

    /// <summary>Optional per-head weight of the softmax matrix, [heads] (Value-SkipInit beta, trainable).</summary>
    public Tensor? MixBeta { get; init; }
}
