namespace DeepScaleLM.Native;

/// <summary>
/// How <see cref="Backend.Attention"/> mixes tokens. With <c>S = scale * Q K^T + bias + mask</c> per head and
/// <c>P = softmax(S)</c> row-wise, the attention matrix is <c>M = mixAlpha * I + mixBeta * P</c> when a mix is
/// given (Value-SkipInit, He et al. 2023 eq. 4) or <c>M = P</c> otherwise, and
/// <c>output[i] = rescale[i] * (M V)[i]</c> (E-SPA's location-dependent rescaling D_l; 1 when absent).
/// Make one per layer and reuse it: it holds no per-call state.
/// </summary>
public sealed record AttentionOptions
{
    /// <summary>Number of heads; channels split as [heads, headDim].</summary>
    public required int Heads { get; init; }

    /// <summary>Mask keys after the query position (decoder self-attention).</summary>
    public bool Causal { get; init; }

    /// <summary>Score scale; null means 1 / sqrt(headDim).</summary>
    public float? Scale { get; init; }

    /// <summary>Optional additive score bias [queryTokens, keyTokens], shared by every head and batch entry
    /// (E-SPA's B_l). Entries may be -infinity. Not trained: it has no gradient.</summary>
    public Tensor? Bias { get; init; }

    /// <summary>Optional per-query-position output scale [queryTokens] (E-SPA's D_l).</summary>
    public Tensor? Rescale { get; init; }

    /// <summary>Optional per-head weight of the identity, [heads] (Value-SkipInit alpha, trainable). Given
    /// together with <see cref="MixBeta"/>; requires as many query as key tokens.</summary>
    public Tensor? MixAlpha { get; init; }

    /// <summary>Optional per-head weight of the softmax matrix, [heads] (Value-SkipInit beta, trainable).</summary>
    public Tensor? MixBeta { get; init; }
}
