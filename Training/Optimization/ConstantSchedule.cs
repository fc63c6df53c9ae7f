namespace DeepScaleLM.Training.Optimization;

/// <summary>The same learning rate at every step: <c>lr(t) = Rate</c>.</summary>
public sealed record ConstantSchedule : ILearningRateSchedule
{
    /// <summary>A constant schedule.</summary>
    /// <param name="rate">The learning rate; finite and &gt;= 0.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="rate"/> is negative or not finite.</exception>
    public ConstantSchedule(double rate)
    {
        ScheduleCheck.Rate(rate, nameof(rate));
        Rate = rate;
    }

    /// <summary>The learning rate of every step.</summary>
    public double Rate { get; }

    /// <inheritdoc/>
    public double LearningRate(int step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        return Rate;
    }
}
