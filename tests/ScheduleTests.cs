using DeepScaleLM.Training.Optimization;

namespace DeepScaleLM.Tests;

/// <summary>Learning-rate schedules against values worked out by hand from their formulas.</summary>
public sealed class ScheduleTests
{
    // max 1.0, floor 0.1, 10 warmup steps, decay over steps 11..110 (T - W = 100).
    private static WarmupCosineSchedule Cosine() => new(1.0, 0.1, 10, 110);
    private static WarmupLinearSchedule Linear() => new(1.0, 0.1, 10, 110);

    [Fact]
    public void WarmupIsLinearFromMaxOverWarmupToMax()
    {
        foreach (WarmupDecaySchedule schedule in new WarmupDecaySchedule[] { Cosine(), Linear() })
        {
            Assert.Equal(0.1, schedule.LearningRate(1), 15);  // 1.0 * 1 / 10
            Assert.Equal(0.5, schedule.LearningRate(5), 15);  // warmup midpoint: 1.0 * 5 / 10
            Assert.Equal(1.0, schedule.LearningRate(10), 15); // end of warmup: the peak
        }
    }

    [Fact]
    public void CosineDecayMatchesHandValues()
    {
        var schedule = Cosine();
        // p = 25 / 100: 0.1 + 0.9 * (1 + cos(pi / 4)) / 2 = 0.1 + 0.9 * 0.8535533905932737.
        Assert.Equal(0.8681980515339464, schedule.LearningRate(35), 14);
        // p = 1/2: cos(pi / 2) = 0, so (max + min) / 2.
        Assert.Equal(0.55, schedule.LearningRate(60), 14);
        Assert.Equal(0.1, schedule.LearningRate(110), 15); // final step: the floor
    }

    [Fact]
    public void LinearDecayMatchesHandValues()
    {
        var schedule = Linear();
        Assert.Equal(0.775, schedule.LearningRate(35), 14); // 0.1 + 0.9 * (1 - 0.25)
        Assert.Equal(0.55, schedule.LearningRate(60), 14);  // 0.1 + 0.9 * 0.5
        Assert.Equal(0.1, schedule.LearningRate(110), 15);
    }

    [Fact]
    public void StepsBeyondTotalStayAtTheFloor()
    {
        foreach (WarmupDecaySchedule schedule in new WarmupDecaySchedule[] { Cosine(), Linear() })
            foreach (int step in new[] { 111, 500, int.MaxValue })
                Assert.Equal(0.1, schedule.LearningRate(step));
    }

    [Fact]
    public void ScheduleRisesThroughWarmupAndNeverRisesAfter()
    {
        foreach (WarmupDecaySchedule schedule in new WarmupDecaySchedule[] { Cosine(), Linear(), new WarmupCosineSchedule(3e-4, 0, 7, 53) })
        {
            for (int step = 2; step <= schedule.WarmupSteps; step++)
                Assert.True(schedule.LearningRate(step) > schedule.LearningRate(step - 1), $"{schedule} warmup step {step}");
            for (int step = schedule.WarmupSteps + 1; step <= schedule.TotalSteps + 5; step++)
            {
                double rate = schedule.LearningRate(step);
                Assert.True(rate <= schedule.LearningRate(step - 1), $"{schedule} decay step {step}");
                Assert.InRange(rate, schedule.MinLearningRate, schedule.MaxLearningRate);
            }
        }
    }

    [Fact]
    public void NoWarmupStartsTheDecayAtStepOne()
    {
        // W = 0, T = 2: step 1 is p = 1/2, halfway down the cosine; step 2 is the floor.
        var schedule = new WarmupCosineSchedule(1.0, 0.2, 0, 2);
        Assert.Equal(0.6, schedule.LearningRate(1), 14);
        Assert.Equal(0.2, schedule.LearningRate(2));
        // W = T: warmup, then straight to the floor.
        var linear = new WarmupLinearSchedule(1.0, 0.2, 4, 4);
        Assert.Equal(1.0, linear.LearningRate(4));
        Assert.Equal(0.2, linear.LearningRate(5));
    }

    [Fact]
    public void ConstantScheduleIsConstant()
    {
        var schedule = new ConstantSchedule(3e-4);
        Assert.Equal(3e-4, schedule.LearningRate(1));
        Assert.Equal(3e-4, schedule.LearningRate(1_000_000));
    }

    [Fact]
    public void StepsAreOneBased()
    {
        ILearningRateSchedule[] schedules = [Cosine(), Linear(), new ConstantSchedule(1)];
        foreach (var schedule in schedules)
            Assert.Equal("step", Assert.Throws<ArgumentOutOfRangeException>(() => schedule.LearningRate(0)).ParamName);
    }

    [Theory]
    [InlineData(-1.0, 0.0, 1, 2, "maxLearningRate")]
    [InlineData(double.NaN, 0.0, 1, 2, "maxLearningRate")]
    [InlineData(double.PositiveInfinity, 0.0, 1, 2, "maxLearningRate")]
    [InlineData(1.0, -0.1, 1, 2, "minLearningRate")]
    [InlineData(1.0, 2.0, 1, 2, "minLearningRate")]
    [InlineData(1.0, 0.0, -1, 2, "warmupSteps")]
    [InlineData(1.0, 0.0, 5, 4, "totalSteps")]
    [InlineData(1.0, 0.0, 0, 0, "totalSteps")]
    public void InvalidScheduleParametersAreNamed(double max, double min, int warmup, int total, string parameter)
    {
        Assert.Equal(parameter, Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupCosineSchedule(max, min, warmup, total)).ParamName);
        Assert.Equal(parameter, Assert.Throws<ArgumentOutOfRangeException>(() => new WarmupLinearSchedule(max, min, warmup, total)).ParamName);
    }

    [Fact]
    public void InvalidConstantRateIsNamed()
    {
        Assert.Equal("rate", Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(-1)).ParamName);
        Assert.Equal("rate", Assert.Throws<ArgumentOutOfRangeException>(() => new ConstantSchedule(double.NaN)).ParamName);
    }

    [Fact]
    public void SchedulesAreValueEqualRecords()
    {
        Assert.Equal(Cosine(), Cosine());
        Assert.NotEqual<WarmupDecaySchedule>(Cosine(), Linear());
    }
}
