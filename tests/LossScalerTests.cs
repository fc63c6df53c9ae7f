using DeepScaleLM.Training.Precision;

namespace DeepScaleLM.Tests;

/// <summary>Dynamic loss scaling: the first scale from predicted gradient moments against hand computations, the
/// overflow path (skip, halve, floor, collapse), growth after the interval, and exact continuation from state.</summary>
public sealed class LossScalerTests
{
    [Theory]
    // 65504 / (8 * 4 * 1e-3) = 2,047,000; 2^20 = 1,048,576 <= it < 2^21.
    [InlineData(1e-3, 1 << 20)]
    // sigma = 1 (DSLM's unit gradients): 65504 / 32 = 2047; 2^10 = 1024 <= it < 2048.
    [InlineData(1.0, 1024)]
    // Exactly on a power of two: 65504 / (32 * 65504 / 65536) = 2048, so s = 2^11 meets the bound with equality.
    [InlineData(65504.0 / 65536.0, 2048)]
    // A huge sigma pushes below the floor: clamped to 1.
    [InlineData(1e6, 1)]
    // A tiny sigma pushes above the ceiling: clamped to 2^24.
    [InlineData(1e-12, 1 << 24)]
    public void InitialScaleIsTheLargestPowerOfTwoUnderTheBound(double sigma, double expected)
    {
        Assert.Equal(expected, DynamicLossScaler.InitialScale([sigma]));
    }

    [Fact]
    public void InitialScaleUsesTheLargestLayerAndTheGivenBound()
    {
        // Largest sigma 0.5; k = 4, headroom 2: 65504 / (4 * 2 * 0.5) = 16376; 2^13 = 8192 <= it < 2^14.
        Assert.Equal(8192, DynamicLossScaler.InitialScale([0.01, 0.5, 0.2], sigmaMultiple: 4, headroom: 2));
        // Same with the default bound (32): 65504 / 16 = 4094 -> 2048.
        Assert.Equal(2048, DynamicLossScaler.InitialScale([0.01, 0.5, 0.2]));
    }

    [Theory]
    [InlineData(new double[0], "no predicted")]
    [InlineData(new[] { 1.0, 0.0 }, "layer 1 is 0")]
    [InlineData(new[] { double.NaN }, "layer 0 is NaN")]
    [InlineData(new[] { -1.0 }, "layer 0 is -1")]
    public void InitialScaleRejectsBadMoments(double[] sigmas, string message)
    {
        var e = Assert.Throws<ArgumentException>(() => DynamicLossScaler.InitialScale(sigmas));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void OverflowSkipsTheStepAndHalvesTheScale()
    {
        var scaler = new DynamicLossScaler(1024, growthInterval: 3);
        Assert.Equal(LossScaleOutcome.Applied, scaler.Update(10));
        Assert.Equal(LossScaleOutcome.SkippedOverflow, scaler.Update(double.PositiveInfinity));
        Assert.Equal(512, scaler.Scale);
        Assert.Equal(1.0 / 512, scaler.InverseScale);
        Assert.Equal(LossScaleOutcome.SkippedOverflow, scaler.Update(double.NaN));
        Assert.Equal(256, scaler.Scale);
        Assert.Equal(2, scaler.SkippedSteps);
        // The overflow reset the clean count: growth needs 3 clean steps from here, not 2.
        Assert.Equal(LossScaleOutcome.Applied, scaler.Update(1));
        Assert.Equal(LossScaleOutcome.Applied, scaler.Update(1));
        Assert.Equal(256, scaler.Scale);
        Assert.Equal(LossScaleOutcome.AppliedAndGrew, scaler.Update(1));
        Assert.Equal(512, scaler.Scale);
    }

    [Fact]
    public void ScaleNeverFallsBelowTheFloorAndCollapseIsAnError()
    {
        var scaler = new DynamicLossScaler(4, minimumScale: 2);
        Assert.Equal(LossScaleOutcome.SkippedOverflow, scaler.Update(double.NaN));
        Assert.Equal(2, scaler.Scale);
        var e = Assert.Throws<LossScaleCollapsedException>(() => scaler.Update(double.PositiveInfinity));
        Assert.Contains("minimum loss scale 2", e.Message);
        Assert.Contains("after 1 skipped steps", e.Message);
        Assert.Equal(2, scaler.Scale); // nothing changed by the failed update
    }

    [Fact]
    public void ScaleDoublesAfterEachGrowthIntervalUpToTheCeiling()
    {
        var scaler = new DynamicLossScaler(1, growthInterval: 2000, maximumScale: 4);
        var grewAt = new List<int>();
        for (int step = 1; step <= 7000; step++)
            if (scaler.Update(1.5) == LossScaleOutcome.AppliedAndGrew) grewAt.Add(step);
        Assert.Equal([2000, 4000, 6000], grewAt);
        Assert.Equal(4, scaler.Scale); // 1 -> 2 -> 4, then held at the ceiling
        Assert.Equal(1000, scaler.State.CleanSteps);
    }

    [Fact]
    public void RestoredStateContinuesExactlyLikeTheOriginal()
    {
        var original = new DynamicLossScaler(256, growthInterval: 5);
        double[] norms = [1, 2, double.NaN, 1, 1, 1, 3, 1, double.PositiveInfinity, 1, 1, 1, 1, 1, 1];
        for (int i = 0; i < 7; i++) original.Update(norms[i]);
        var resumed = new DynamicLossScaler(original.State with { });
        Assert.Equal(original.State, resumed.State);
        for (int i = 7; i < norms.Length; i++)
        {
            Assert.Equal(original.Update(norms[i]), resumed.Update(norms[i]));
            Assert.Equal(original.State, resumed.State);
        }
        Assert.Equal(new LossScalerState(256, 5, 1, 1 << 24, 1, 2), resumed.State);
    }

    [Theory]
    [InlineData(3.0, 2000, 1.0, 16.0, 0, "Scale must be a positive power of two")]
    [InlineData(32.0, 2000, 1.0, 16.0, 0, "scale 32 is outside [1, 16]")]
    [InlineData(8.0, 0, 1.0, 16.0, 0, "growth interval 0")]
    [InlineData(8.0, 10, 1.0, 16.0, 10, "clean steps 10 must be in [0, growth interval 10)")]
    [InlineData(8.0, 10, 32.0, 16.0, 0, "minimum scale 32 exceeds maximum scale 16")]
    public void InconsistentStateIsRejected(double scale, int interval, double minimum, double maximum, int clean, string message)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DynamicLossScaler(new LossScalerState(scale, interval, minimum, maximum, clean, 0)));
        Assert.Contains(message, e.Message);
    }
}
