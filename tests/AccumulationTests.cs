using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Tests.Support;
using DeepScaleLM.Training.Optimization;

namespace DeepScaleLM.Tests;

/// <summary>Gradient accumulation's loss scale.</summary>
public sealed class AccumulationTests
{
    [Theory]
    [InlineData(1, 1, 1.0f)]
    [InlineData(1, 8, 0.125f)]
    [InlineData(4, 8, 0.03125f)] // 1 / 32
    [InlineData(3, 5, 1f / 15)]
    public void LossScaleIsOneOverAllRowsOfTheStep(int microBatches, int rows, float scale)
    {
        Assert.Equal(scale, GradientAccumulation.LossScale(microBatches, rows));
    }

    [Fact]
    public void LossScaleDoesNotOverflowForLargeSteps()
    {
        // 65536 * 65536 = 2^32 overflows int; the scale is 2^-32 exactly.
        Assert.Equal(MathF.Pow(2, -32), GradientAccumulation.LossScale(65536, 65536));
    }

    [Theory]
    [InlineData(0, 1, "microBatchesPerStep")]
    [InlineData(1, 0, "rowsPerMicroBatch")]
    [InlineData(-2, 4, "microBatchesPerStep")]
    public void InvalidCountsAreNamed(int microBatches, int rows, string parameter)
    {
        Assert.Equal(parameter, Assert.Throws<ArgumentOutOfRangeException>(() => GradientAccumulation.LossScale(microBatches, rows)).ParamName);
    }

    [Fact]
    public void AccumulatedMicroBatchesGiveTheFullBatchGradient()
    {
        // Two micro-batches of 3 rows, accumulated with 1/(2*3), against one batch of 6 rows with 1/6.
        const int rows = 3, classes = 5;
        using var backend = new CpuBackend();
        var logits = TestData.RoundToSingle(TestData.Normal(7, 2 * rows * classes));
        var targets = TestData.Integers(8, 2 * rows, classes);
        float scale = GradientAccumulation.LossScale(2, rows);

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
