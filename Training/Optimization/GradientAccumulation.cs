namespace DeepScaleLM.Training.Optimization;

/// <summary>
/// Gradient accumulation: one optimizer step from several micro-batches. <c>SoftmaxCrossEntropyBackward</c>
/// adds <c>gradLosses[i] * dloss_i/dlogits</c> into the gradients, so passing the same scale to every row of every
/// micro-batch accumulates the gradient of the mean loss over all rows of the step, exactly what a single batch
/// of <c>microBatches * rows</c> rows would give.
/// </summary>
public static class GradientAccumulation
{
    /// <summary>
    /// The per-row <c>gradLosses</c> value: <c>1 / (microBatchesPerStep * rowsPerMicroBatch)</c>. With an
    /// ignore index, count only the rows that carry a target (over the whole step, equally split).
    /// </summary>
    /// <param name="microBatchesPerStep">Micro-batches whose gradients add up to one step; &gt;= 1.</param>
    /// <param name="rowsPerMicroBatch">Loss rows (tokens) per micro-batch; &gt;= 1.</param>
    /// <exception cref="ArgumentOutOfRangeException">A count is less than 1.</exception>
    public static float LossScale(int microBatchesPerStep, int rowsPerMicroBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(microBatchesPerStep, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowsPerMicroBatch, 1);
        // The product in long (and the division in double) so large steps neither overflow nor round twice.
        return (float)(1.0 / ((long)microBatchesPerStep * rowsPerMicroBatch));
    }
}
