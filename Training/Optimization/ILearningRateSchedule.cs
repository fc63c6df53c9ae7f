namespace DeepScaleLM.Training.Optimization;

/// <summary>
/// The learning rate as a function of the optimizer step. Steps are 1-based, like AdamW's bias-correction step
/// <c>t</c>: step 1 is the first update, so the rate passed to <c>Backend.AdamW</c> at step t is
/// <c>LearningRate(t)</c>.
/// </summary>
public interface ILearningRateSchedule
{
    /// <summary>The learning rate of the 1-based optimizer <paramref name="step"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="step"/> is less than 1.</exception>
    double LearningRate(int step);
}
