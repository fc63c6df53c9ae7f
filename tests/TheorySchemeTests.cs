using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Tests;

/// <summary>
/// The DSLM init against the values the official recursion produces (dslm-theory.md 5.2, check 2 of section 7), and the
/// residual-scaling conventions (4.2, check 7). Every expected number is copied from the reference, not from this code.
/// </summary>
public sealed class TheoryDslmInitTests
{
    private const int Decimals = 6;

    [Fact]
    public void OfficialSettingReproducesTheInitTable()
    {
        // d = 1024, p = 0.1, three tables, the make_figs.sh setting (dslm-theory.md 5.2).
        Assert.Equal(0.547723, DslmInit.EmbeddingStd(0.1, 3), Decimals);
        Assert.Equal(0.03125, DslmInit.QueryKeyStd(1024), Decimals);
        Assert.Equal(0.025595, DslmInit.FeedForwardStd(1024, 0.1), Decimals);
        double embeddingStd = DslmInit.EmbeddingStd(0.1, 3);
        Assert.Equal(0.057054, DslmInit.LogitScale(1024, embeddingStd * embeddingStd), Decimals);
    }

    [Theory]
    [InlineData(0, 0.045578, 0.198900)]
    [InlineData(1, 0.045328, 0.203311)]
    [InlineData(2, 0.045088, 0.207689)]
    [InlineData(5, 0.044412, 0.220628)]
    [InlineData(10, 0.043416, 0.241562)]
    [InlineData(50, 0.038666, 0.384013)]
    [InlineData(100, 0.035964, 0.513085)]
    [InlineData(191, 0.033788, 0.658565)]
    public void ValueOutputRecursionMatchesOfficialFigures(int layer, double std, double correlation)
    {
        // lam^2 = 0.995, beta^2 = 0.005, 192 layers (dslm-theory.md 5.2).
        var schedule = DslmInit.ValueOutputRecursion(1024, 0.1, 192, ResidualScaling.OfficialDeepScaleLM);
        Assert.Equal(std, schedule.Std[layer], Decimals);
        Assert.Equal(correlation, schedule.InputCorrelation[layer], Decimals);
    }

    [Fact]
    public void OfficialRecursionEndsAtPublishedCorrelationWithUnitVariance()
    {
        var schedule = DslmInit.ValueOutputRecursion(1024, 0.1, 192, ResidualScaling.OfficialDeepScaleLM);
        Assert.Equal(0.659716, schedule.FinalCorrelation, Decimals);
        Assert.Equal(1.0, schedule.FinalVariance, 12);
    }

    [Theory]
    [InlineData(0, 0.045578, double.NaN)]
    [InlineData(10, 0.041676, 0.284499)]
    [InlineData(100, 0.033545, 0.677840)]
    [InlineData(191, 0.032299, 0.788673)]
    public void BlockCountedTwoOverNRowMatches(int layer, double std, double correlation)
    {
        // beta^2 = 2/192: k = 2, alpha = 1, N = blocks (dslm-theory.md 5.2).
        var residual = new ResidualDepthScaling(2, 1, DepthUnit.Blocks).For(192);
        var schedule = DslmInit.ValueOutputRecursion(1024, 0.1, 192, residual);
        Assert.Equal(std, schedule.Std[layer], Decimals);
        if (!double.IsNaN(correlation)) Assert.Equal(correlation, schedule.InputCorrelation[layer], Decimals);
        Assert.Equal(0.789284, schedule.FinalCorrelation, Decimals);
    }

    [Fact]
    public void SmallModelMatchesTheRepositoryComments()
    {
        // d = 512, p = 0.1, 12 layers, no lam/beta: the repo's "#0.036", "#0.044", "#0.065" (dslm-theory.md 5.2).
        Assert.Equal(0.036197, DslmInit.FeedForwardStd(512, 0.1), Decimals);
        Assert.Equal(0.044194, DslmInit.QueryKeyStd(512), Decimals);
        var schedule = DslmInit.ValueOutputRecursion(512, 0.1, 12, ResidualScaling.Plain);
        Assert.Equal(0.064457, schedule.Std[0], Decimals);
    }

    [Fact]
    public void PlanForOurDecoderUsesTwoTablesAndUnitLogitVariance()
    {
        var shape = new TransformerShape(Layers: 48, ModelWidth: 256, Heads: 4, SequenceLength: 128, Dropout: 0.1);
        var plan = DslmInit.Plan(shape);
        Assert.Equal(Math.Sqrt(0.9 / 2), plan.EmbeddingStd, 15);
        // Logits = scale * LN(h) E^T: variance d * scale^2 * Var(E) = 1 (dslm-theory.md 4.1, check 6 of section 7).
        Assert.Equal(1.0, shape.ModelWidth * plan.LogitScale * plan.LogitScale * plan.EmbeddingStd * plan.EmbeddingStd, 12);
        Assert.Equal(48, plan.ValueStd.Count);
        Assert.Equal(2.0 / 96, plan.Residual.Branch * plan.Residual.Branch, 15);
    }
}

/// <summary>lam^2 + beta^2 = 1 for every convention (dslm-theory.md 4.2, check 7), and the DeepNet and Xavier baselines.</summary>
public sealed class TheoryResidualScalingTests
{
    public static TheoryData<double, double, DepthUnit, int> Conventions()
    {
        var data = new TheoryData<double, double, DepthUnit, int>();
        foreach (double k in new[] { 1.0, 2.0 })
            foreach (double exponent in new[] { 0.5, 1.0 })
                foreach (var unit in new[] { DepthUnit.Blocks, DepthUnit.Sublayers })
                    foreach (int layers in new[] { 2, 12, 48, 192, 1000 })
                        if (new ResidualDepthScaling(k, exponent, unit).BranchVariance(layers) <= 1) // else no real lam
                            data.Add(k, exponent, unit, layers);
        return data;
    }

    [Theory]
    [MemberData(nameof(Conventions))]
    public void LambdaSquaredPlusBetaSquaredIsOne(double k, double exponent, DepthUnit unit, int layers)
    {
        var scaling = new ResidualDepthScaling(k, exponent, unit);
        var residual = scaling.For(layers);
        double n = unit == DepthUnit.Blocks ? layers : 2 * layers;
        Assert.Equal(k / Math.Pow(n, exponent), residual.Branch * residual.Branch, 15);
        Assert.True(Math.Abs(residual.Skip * residual.Skip + residual.Branch * residual.Branch - 1) <= 1e-15);
    }

    [Fact]
    public void OfficialFixedBetaSquaredKeepsTheConstraint()
    {
        var official = ResidualScaling.OfficialDeepScaleLM;
        Assert.Equal(0.995, official.Skip * official.Skip, 15);
        Assert.Equal(0.005, official.Branch * official.Branch, 15);
        Assert.True(Math.Abs(official.Skip * official.Skip + official.Branch * official.Branch - 1) <= 1e-15);
    }

    [Fact]
    public void DefaultConventionIsCloseToTheOfficialRunAt192Layers()
    {
        // The default k = 2 over N = sublayers gives 2/384 = 0.0052 where the official run used 0.005 (dslm-theory.md 4.2).
        Assert.Equal(2.0 / 384, new ResidualDepthScaling().BranchVariance(192), 15);
    }

    [Fact]
    public void BranchShareAboveOneIsRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ResidualDepthScaling(2, 1, DepthUnit.Blocks).For(1));
    }

    [Theory]
    [InlineData(2, 1.4142135623730951, 0.5)]   // alpha = 4^(1/4) = sqrt 2, beta = 16^(-1/4) = 1/2
    [InlineData(32, 2.8284271247461903, 0.25)] // alpha = 64^(1/4) = 2 sqrt 2, beta = 256^(-1/4) = 1/4
    public void DeepNetOneStackFormulas(int layers, double alpha, double beta)
    {
        Assert.Equal(alpha, DeepNetInit.SkipScale(layers), 14);
        Assert.Equal(beta, DeepNetInit.WeightGain(layers), 14);
        var plan = DeepNetInit.Plan(new TransformerShape(layers, 256, 4, 64, 0));
        Assert.Equal(alpha, plan.Residual.Skip, 14);
        Assert.Equal(1.0, plan.Residual.Branch);
        Assert.Equal(beta / 16, plan.ValueStd[0], 15);          // Xavier d x d: sqrt(2 / 512) = 1/16, times beta
        Assert.Equal(1.0 / 16, plan.QueryKeyStd, 15);            // gain 1 on Q and K
        Assert.Equal(beta * Math.Sqrt(2.0 / 1280), plan.FeedForwardInputStd, 15);
    }

    [Fact]
    public void XavierBaselineMatchesSectionThree()
    {
        // d = 1024, 16 heads (d_head 64): Q, K, V sqrt(2/1088); output and embeddings sqrt(1/1024); FFN sqrt(2/(5d)).
        var plan = XavierInit.Plan(new TransformerShape(192, 1024, 16, 256, 0.1));
        Assert.Equal(Math.Sqrt(2.0 / 1088), plan.QueryKeyStd, 15);
        Assert.Equal(Math.Sqrt(2.0 / 1088), plan.ValueStd[191], 15);
        Assert.Equal(0.03125, plan.OutputStd[0], 15);
        Assert.Equal(0.03125, plan.EmbeddingStd, 15);
        Assert.Equal(Math.Sqrt(2.0 / 5120), plan.FeedForwardOutputStd, 15);
        Assert.Equal(ResidualScaling.Plain, plan.Residual);
    }

    [Fact]
    public void SimpleInitIsTwoHundredthsEverywhere()
    {
        var plan = SimpleInit.Plan(new TransformerShape(4, 64, 2, 16, 0));
        Assert.All(new[] { plan.EmbeddingStd, plan.QueryKeyStd, plan.ValueStd[3], plan.OutputStd[0], plan.FeedForwardInputStd }, std => Assert.Equal(0.02, std));
    }

    [Fact]
    public void SuoScaleFollowsFanOutOverFanIn()
    {
        // spa-theory.md 4: expanding 256 -> 1024 needs 2, contracting 1024 -> 256 keeps 1.
        Assert.Equal(2.0, ScaledUniformOrthogonal.Scale(256, 1024));
        Assert.Equal(1.0, ScaledUniformOrthogonal.Scale(1024, 256));
    }
}
