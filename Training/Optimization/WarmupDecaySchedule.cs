namespace DeepScaleLM.Training.Optimization;

/// <summary>
/// Linear warmup from 0 to <see cref="MaxLearningRate"/> over <see cref="WarmupSteps"/> steps, then a decay to
/// the floor <see cref="MinLearningRate"/> at <see cref="TotalSteps"/>, and the floor after that. With 1-based
/// step t, W = WarmupSteps and T = TotalSteps:
/// <code>
/// t &lt;= W:      lr = max * t / W                          (step 1 is max / W, step W is max)
/// W &lt; t &lt;= T:  p = (t - W) / (T - W);  lr = min + (max - min) * f(p)   (f falls from f(0) = 1 to f(1) = 0)
/// t &gt; T:       lr = min
/// </code>
/// The derived schedule supplies f. Warmup never reaches 0 (step 1 already learns), and the decay starts
/// just below max at step W + 1 and ends exactly at min on step T.
/// </summary>
public abstract record WarmupDecaySchedule : ILearningRateSchedule
{
    /// <summary>Validates and stores the parameters.</summary>
    /// <param name="maxLearningRate">The peak, reached at the end of warmup; finite and &gt;= 0.</param>
    /// <param name="minLearningRate">The floor reached at <paramref name="totalSteps"/>; in [0, max].</param>
    /// <param name="warmupSteps">Steps of linear warmup; &gt;= 0 (0: start at the peak).</param>
    /// <param name="totalSteps">The step at which the decay reaches the floor; &gt;= warmupSteps and &gt;= 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">A parameter is outside the range above; the message names it.</exception>
    protected WarmupDecaySchedule(double maxLearningRate, double minLearningRate, int warmupSteps, int totalSteps)
    {
        ScheduleCheck.Rate(maxLearningRate, nameof(maxLearningRate));
        ScheduleCheck.Rate(minLearningRate, nameof(minLearningRate));
        if (minLearningRate > maxLearningRate)
            throw new ArgumentOutOfRangeException(nameof(minLearningRate), minLearningRate, $"{nameof(minLearningRate)} must not exceed {nameof(maxLearningRate)} ({maxLearningRate})");
        ArgumentOutOfRangeException.ThrowIfNegative(warmupSteps);
        ArgumentOutOfRangeException.ThrowIfLessThan(totalSteps, Math.Max(1, warmupSteps));
        MaxLearningRate = maxLearningRate;
        MinLearningRate = minLearningRate;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
    }

    /// <summary>The peak learning rate, at step <see cref="WarmupSteps"/>.</summary>
    public double MaxLearningRate { get; }
    /// <summary>The floor, from step <see cref="TotalSteps"/> on.</summary>
    public double MinLearningRate { get; }
    /// <summary>Steps of linear warmup.</summary>
    public int WarmupSteps { get; }
    /// <summary>The last step of the decay.</summary>
    public int TotalSteps { get; }

    /// <inheritdoc/>
    public double LearningRate(int step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        if (step <= WarmupSteps) return MaxLearningRate * step / WarmupSteps;
        if (step >= TotalSteps) return MinLearningRate;
        double progress = (double)(step - WarmupSteps) / (TotalSteps - WarmupSteps);
        return MinLearningRate + (MaxLearningRate - MinLearningRate) * DecayFactor(progress);
    }

    /// <summary>f(p) for decay progress p in (0, 1): the fraction of (max - min) left above the floor.</summary>
    protected abstract double DecayFactor(double progress);
}

/// <summary>
/// Warmup, then cosine decay (Loshchilov &amp; Hutter 2017, SGDR, without restarts):
/// <c>f(p) = (1 + cos(pi p)) / 2</c>, so halfway through the decay the rate is (max + min) / 2.
/// See <see cref="WarmupDecaySchedule"/> for the whole formula.
/// </summary>
public sealed record WarmupCosineSchedule : WarmupDecaySchedule
{
    /// <inheritdoc cref="WarmupDecaySchedule(double, double, int, int)"/>
    public WarmupCosineSchedule(double maxLearningRate, double minLearningRate, int warmupSteps, int totalSteps)
        : base(maxLearningRate, minLearningRate, warmupSteps, totalSteps) { }

    /// <inheritdoc/>
    protected override double DecayFactor(double progress) => 0.5 * (1 + Math.Cos(Math.PI * progress));
}

/// <summary>
/// Warmup, then linear decay: <c>f(p) = 1 - p</c>. See <see cref="WarmupDecaySchedule"/> for the whole formula.
/// </summary>
public sealed record WarmupLinearSchedule : WarmupDecaySchedule
{
    /// <inheritdoc cref="WarmupDecaySchedule(double, double, int, int)"/>
    public WarmupLinearSchedule(double maxLearningRate, double minLearningRate, int warmupSteps, int totalSteps)
        : base(maxLearningRate, minLearningRate, warmupSteps, totalSteps) { }

    /// <inheritdoc/>
    protected override double DecayFactor(double progress) => 1 - progress;
}
