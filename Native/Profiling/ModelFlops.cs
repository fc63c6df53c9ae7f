namespace DeepScaleLM.Native.Profiling;

/// <summary>
/// Model FLOPs utilisation (MFU) in the convention of llm.c and PaLM (Chowdhery et al. 2022, appendix B): the FLOPs a
/// training step must do per token, whatever the implementation really does (recomputation is not counted), divided
/// by the time it took and the device's peak.
/// </summary>
public static class ModelFlops
{
    /// <summary>The formula <see cref="PerToken"/> computes, as the report states it.</summary>
    public const string Formula = "6N + 6*L*d*T";

    /// <summary>
    /// Training FLOPs per token of a causal decoder: <c>6N</c> for the weight matrices (2 forward and 4 backward per
    /// parameter and token) plus <c>6 L d T</c> for attention's two products per layer (<c>Q K^T</c> and <c>P V</c>, 2 d T
    /// per token each, forward and backward), which is PaLM's <c>12 L d T</c> halved for the causal mask as llm.c does.
    /// </summary>
    /// <param name="parameters">N: the parameters the matrix products multiply by (see docs/profiling.md for which).</param>
    /// <param name="layers">L: blocks.</param>
    /// <param name="width">d: model width (heads times head size).</param>
    /// <param name="tokens">T: tokens per sequence (the attention context).</param>
    public static double PerToken(long parameters, int layers, int width, int tokens) =>
        6.0 * parameters + 6.0 * layers * width * tokens;

    /// <summary>MFU: <paramref name="flopsPerToken"/> times tokens per second, over the peak (0 when the peak is unknown).</summary>
    public static double Utilization(double flopsPerToken, double tokensPerSecond, double peakFlopsPerSecond) =>
        peakFlopsPerSecond > 0 ? flopsPerToken * tokensPerSecond / peakFlopsPerSecond : 0;
}
