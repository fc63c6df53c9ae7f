using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;

namespace DeepScaleLM.Tests;

/// <summary>Gradient accumulation: backward ops add into gradients, so micro-batches scaled by 1 / (all rows of the step)
/// sum to the whole batch's gradient (what Trainer relies on with one mean loss per micro-batch over the micro-batch count).</summary>
public sealed class AccumulationTests
{
    [Fact]
    public void AccumulatedMicroBatchesGiveTheFullBatchGradient()
    {
        // Two micro-batches of 3 rows, accumulated with 1/(2*3), against one batch of 6 rows with 1/6.
        const int rows = 3, classes = 5;
        using var backend = new CpuBackend();
        var logits = TestData.RoundToSingle(TestData.Normal(7, 2 * rows * classes));
        var targets = TestData.Integers(8, 2 * rows, classes);
        float scale = 1f / (2 * rows);

        using var whole = TestData.Tensor(backend, new double[2 * rows * classes], 2 * rows, classes);
        using var accumulatedHalf = TestData.Tensor(backend, new double[rows * classes], rows, classes);
        using var halfScale = TestData.Tensor(backend, Enumerable.Repeat((double)scale, rows).ToArray(), rows);
        for (int micro = 0; micro < 2; micro++)
        {
            using var part = TestData.Tensor(backend, logits[(micro * rows * classes)..((micro + 1) * rows * classes)], rows, classes);
            using var partTargets = TestData.IntTensor(backend, targets[(micro * rows)..((micro + 1) * rows)], rows);
            backend.SoftmaxCrossEntropyBackward(accumulatedHalf, halfScale, part, partTargets);
        }
        // Both micro-batches accumulated into one [rows, classes] buffer (as a shared parameter gradient would be)
        // equal the full batch's gradient rows summed pairwise, row r of each half onto row r.
        using var allLogits = TestData.Tensor(backend, logits, 2 * rows, classes);
        using var allTargets = TestData.IntTensor(backend, targets, 2 * rows);
        using var wholeScale = TestData.Tensor(backend, Enumerable.Repeat(1.0 / (2 * rows), 2 * rows).ToArray(), 2 * rows);
        backend.SoftmaxCrossEntropyBackward(whole, wholeScale, allLogits, allTargets);
        var wholeGradient = TestData.Read(backend, whole);
        var expected = Enumerable.Range(0, rows * classes).Select(i => wholeGradient[i] + wholeGradient[i + rows * classes]).ToArray();
        Numerics.AssertClose(expected, TestData.Read(backend, accumulatedHalf), 1e-6, 1e-6, "accumulated gradient");
    }
}
