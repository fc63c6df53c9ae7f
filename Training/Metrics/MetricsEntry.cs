namespace DeepScaleLM.Training.Metrics;

/// <summary>One line of the metrics log: what the trainer knows after an optimizer step.</summary>
/// <param name="Step">The 1-based optimizer step just completed.</param>
/// <param name="Loss">Training loss of the step (mean cross-entropy, nats per token).</param>
/// <param name="LearningRate">The learning rate the step used.</param>
/// <param name="GradientNorm">Global gradient norm (unscaled, before clipping); infinite or NaN on an overflow step.</param>
/// <param name="TokensPerSecond">Training throughput over the last log interval.</param>
/// <param name="LossScale">The fp16 loss scale the step used (1 without loss scaling).</param>
/// <param name="ElapsedSeconds">Training wall time since the run began, across resumes.</param>
public sealed record MetricsEntry(long Step, double Loss, double LearningRate, double GradientNorm, double TokensPerSecond,
    double LossScale, double ElapsedSeconds)
{
    /// <summary>Validation loss when it was measured at this step, else null.</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>Named per-layer arrays (e.g. the <see cref="MomentMonitor"/>'s), else null. Names are JSON keys of
    /// the line, so they must differ from the fixed keys.</summary>
    public IReadOnlyDictionary<string, double[]>? Arrays { get; init; }

    /// <summary>Warnings raised at this step (e.g. moment drift), else null.</summary>
    public IReadOnlyList<string>? Warnings { get; init; }
}
