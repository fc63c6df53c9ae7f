namespace DeepScaleLM.Theory.Components;

/// <summary>The assumptions the official formulas are built on (dslm-theory.md 1), checked or enforced in one place.</summary>
internal static class Assumptions
{
    /// <summary>
    /// ReLU, GeLU, single-head attention and softmax formulas assume a zero-mean input (dslm-theory.md 1); a non-zero
    /// mean would make them silently wrong, so it is rejected.
    /// </summary>
    public static void RequireZeroMean(SignalMoments input, string component)
    {
        if (input.Mean != 0)
            throw new ArgumentException($"{component} moments assume a zero-mean input; got mean {input.Mean:R}.", nameof(input));
    }

    /// <summary>
    /// r clamped to [-1, 1]: a correlation computed as a ratio can round a few ulps past 1, where sqrt(1 - r^2) and
    /// arccos(r) would turn NaN.
    /// </summary>
    public static double ClampCorrelation(double correlation) => Math.Clamp(correlation, -1.0, 1.0);
}
