using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Tests;

/// <summary>
/// Hand-checkable identities of the component formulas of dslm-theory.md 2: limits, special points, and the agreement
/// of composed blocks with the closed forms of 2.10.
/// </summary>
public sealed class TheoryComponentTests
{
    private static readonly GradientMoments UnitGradient = new(1, 0.3);

    [Fact]
    public void LinearVarianceAndCorrelation()
    {
        // d_in = 100, s2 = 4, mu = 1, sw2 = 0.01: variance 100 * (4 + 1) * 0.01 = 5, r_out = (1 + 0.5 * 4) / 5 (2.1).
        var linear = new Linear(100, 300, 0.01);
        var output = linear.Forward(new SignalMoments(1, 4, 0.5));
        Assert.Equal(0.0, output.Mean);
        Assert.Equal(5.0, output.Variance, 14);
        Assert.Equal(0.6, output.Correlation, 14);
        // Backward: d_out g2 sw2 = 300 * 2 * 0.01, correlation kept.
        var gradient = linear.Backward(output, new GradientMoments(2, 0.3));
        Assert.Equal(6.0, gradient.Variance, 14);
        Assert.Equal(0.3, gradient.Correlation);
    }

    [Fact]
    public void ReluSpecialPoints()
    {
        var relu = new Relu();
        var output = relu.Forward(new SignalMoments(0, 1, 0.4));
        Assert.Equal((Math.PI - 1) / (2 * Math.PI), output.Variance, 15);
        Assert.Equal(1 / Math.Sqrt(2 * Math.PI), output.Mean, 15);
        Assert.Equal(1.0, relu.Forward(new SignalMoments(0, 2, 1)).Correlation, 14);
        Assert.Equal(0.0, relu.Forward(new SignalMoments(0, 2, 0)).Correlation, 15);
        // Backward: half the variance; rg kept at r = 1 (both tokens pass together), halved at r = 0 (2.2).
        Assert.Equal(new GradientMoments(0.5, 0.3), relu.Backward(new SignalMoments(0, 1, 1), UnitGradient));
        Assert.Equal(0.15, relu.Backward(new SignalMoments(0, 1, 0), UnitGradient).Correlation, 15);
    }

    [Fact]
    public void ReluDerivedFormsAgreeAtTheEnds()
    {
        Assert.Equal(1 / Math.PI, Relu.SecondMomentCorrelation(0), 15);
        Assert.Equal(1.0, Relu.SecondMomentCorrelation(1), 15);
        Assert.Equal(1 / Math.PI, Relu.SecondMomentCorrelationApproximation(0), 15);
        Assert.Equal(1.0, Relu.SecondMomentCorrelationApproximation(1), 15);
        Assert.Equal(1.0, Relu.CorrelationApproximation(1), 15);
        foreach (double r in new[] { 0.2, 0.5, 0.8 })
        {
            // The fits are approximations; the official code uses them for r in [0, 1], and they stay within 0.03.
            Assert.InRange(Relu.SecondMomentCorrelationApproximation(r) - Relu.SecondMomentCorrelation(r), -0.03, 0.03);
            Assert.InRange(Relu.CorrelationApproximation(r) - new Relu().Forward(new SignalMoments(0, 1, r)).Correlation, -0.03, 0.03);
        }
    }

    [Theory]
    [InlineData(0.1)]
    [InlineData(1.0)]
    [InlineData(10.0)]
    public void GeluCovarianceAtFullCorrelationIsTheVariance(double s2)
    {
        var gelu = new Gelu();
        var full = gelu.Forward(new SignalMoments(0, s2, 1));
        Assert.Equal(1.0, full.Correlation, 12);
        Assert.Equal(Gelu.VarianceReviewerForm(s2), full.Variance, 13);
        Assert.Equal(0.0, gelu.Forward(new SignalMoments(0, s2, 0)).Covariance, 14);
        var backward = gelu.Backward(new SignalMoments(0, s2, 1), UnitGradient);
        Assert.Equal(0.3, backward.Correlation, 12);
    }

    [Fact]
    public void GeluTendsToLinearForSmallInputsAndToReluForLargeOnes()
    {
        var gelu = new Gelu();
        // s2 -> 0: gelu(x) ~ x/2, so variance s2/4 and gradient variance g2/4 (2.3).
        var small = new SignalMoments(0, 1e-6, 0.3);
        Assert.Equal(0.25, gelu.Forward(small).Variance / small.Variance, 5);
        Assert.Equal(0.25, gelu.Backward(small, UnitGradient).Variance, 5);
        // s2 -> infinity: gelu(x) ~ relu(x) (2.2 vs 2.3).
        var large = new SignalMoments(0, 1e8, 0.3);
        var relu = new Relu();
        Assert.Equal(1.0, gelu.Forward(large).Variance / relu.Forward(large).Variance, 4);
        Assert.Equal(1.0, gelu.Forward(large).Mean / relu.Forward(large).Mean, 4);
        Assert.Equal(relu.Forward(large).Correlation, gelu.Forward(large).Correlation, 4);
        Assert.Equal(0.5, gelu.Backward(large, UnitGradient).Variance, 4);
    }

    [Fact]
    public void LayerNormDropoutAndResidual()
    {
        var layerNorm = new LayerNorm(100);
        Assert.Equal(new SignalMoments(0, 1, 0.5 * 0.99), layerNorm.Forward(new SignalMoments(-10, 9, 0.5)));
        Assert.Equal(-1.0 / 99, layerNorm.CrossFeatureCovariance);
        Assert.Equal(new GradientMoments(1.0 / 9, 0.3), layerNorm.Backward(new SignalMoments(3, 9, 0.5), UnitGradient));

        // p = 1/2, mu = 2, s2 = 1: variance (1 + 0.5 * 4) / 0.5 = 6, covariance 0.4 unchanged (2.5).
        var dropout = new Dropout(0.5);
        var dropped = dropout.Forward(new SignalMoments(2, 1, 0.4));
        Assert.Equal(6.0, dropped.Variance, 15);
        Assert.Equal(0.4, dropped.Covariance, 15);
        Assert.Equal(2.0, dropped.Mean);
        Assert.Equal(new GradientMoments(2, 0.15), dropout.Backward(default, UnitGradient));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Dropout(1));

        // lam^2 + beta^2 = 1 on unit-variance inputs: variance 1, r = lam^2 r_x + beta^2 r_f (2.9).
        var residual = ResidualScaling.UnitVariance(0.2);
        var combined = residual.Forward(new SignalMoments(0, 1, 0.5), new SignalMoments(0, 1, 0.9));
        Assert.Equal(1.0, combined.Variance, 15);
        Assert.Equal(0.8 * 0.5 + 0.2 * 0.9, combined.Correlation, 15);
        var (toSkip, toBranch) = residual.Backward(UnitGradient);
        Assert.Equal(1.0, toSkip.Variance + toBranch.Variance, 15);
    }

    [Fact]
    public void SoftmaxWeightMomentsHaveTheirClosedFormsAndLimits()
    {
        // One key takes weight 1 whatever its logit; equal logits give uniform weights 1/L, independent of z.
        foreach (double s2 in new[] { 0.0, 0.5, 4.0 })
            Assert.Equal(new SoftmaxWeightMoments(1, 1, 1, 1, 1, 1), Softmax.WeightMoments(1, s2));
        Assert.Equal(new SoftmaxWeightMoments(0.2, 0.2, 0.2, 0.04, 0.04, 0.008), Softmax.WeightMoments(5, 0));
        Assert.Equal(0, Softmax.WeightMoments(1, 2.0).JacobianSquareSum);
        Assert.Equal(0, Softmax.WeightMoments(1, 2.0).PairOverlapSum);
        // Many keys: E[sum p^2] -> exp(s2) / L, E[(sum p z)^2] -> (E[z e^(sigma z)] / E[e^(sigma z)])^2 = s2, and
        // E[sum p^2 z^2] -> E[z^2 e^(2 sigma z)] / (L E[e^(sigma z)]^2) = (1 + 4 s2) exp(s2) / L; each to O(1/L).
        const double Keys = 20000, Variance = 0.7;
        var many = Softmax.WeightMoments(Keys, Variance);
        Assert.Equal(1, many.SquareSum * Keys / Math.Exp(Variance), 2e-3);
        Assert.Equal(1, many.TiltedMeanSquare / Variance, 2e-3);
        Assert.Equal(1, many.TiltedSquareSum * Keys / ((1 + 4 * Variance) * Math.Exp(Variance)), 2e-3);
        // Two keys: w = sigmoid(sigma (z1 - z2)); E[w^2 + (1 - w)^2] by a float64 trapezoid over d = z1 - z2 ~ N(0, 2).
        double sigma = Math.Sqrt(1.3), reference = 0;
        for (double d = -14; d <= 14; d += 1e-3)
        {
            double w = 1 / (1 + Math.Exp(-sigma * d));
            reference += (w * w + (1 - w) * (1 - w)) * Math.Exp(-d * d / 4) / Math.Sqrt(4 * Math.PI) * 1e-3;
        }
        Assert.Equal(reference, Softmax.WeightMoments(2, 1.3).SquareSum, 7);
    }

    [Theory]
    [InlineData(0.5, -1.0)]
    [InlineData(double.NaN, 1.0)]
    [InlineData(3.0, double.PositiveInfinity)]
    public void SoftmaxWeightMomentsRejectBadArguments(double keys, double variance) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Softmax.WeightMoments(keys, variance));

    [Fact]
    public void SoftmaxOfIdenticalLogitsIsUniform()
    {
        // r = 1: every logit equal, so the output is exactly 1/L with no variance (2.6).
        var identical = new SignalMoments(0, 0.5, 1);
        foreach (var approximation in new[] { SoftmaxApproximation.Approximate, SoftmaxApproximation.Full })
        {
            Assert.Equal(0.0, Softmax.OutputVariance(identical, 300, approximation));
            Assert.Equal(1.0, Softmax.GradientVariance(identical, 300, 2, approximation) * 300 * 300 / 2, 14);
        }
        Assert.Equal(1.0 / 300, Softmax.OutputMean(300));
        // V1 and V2 agree to first order in the spread for long rows.
        var spread = new SignalMoments(0, 0.01, 0);
        Assert.Equal(1.0, Softmax.OutputVariance(spread, 10000, SoftmaxApproximation.Full) / Softmax.OutputVariance(spread, 10000, SoftmaxApproximation.Approximate), 2);
    }

    [Fact]
    public void AttentionWithZeroQueryKeyReachesItsUniformLimit()
    {
        // sq2 -> 0: variance d sv2 s2 (r + (1 - r) / (L (1 - p))), covariance d sv2 s2 (r + (1 - r) / L) (2.7 derived).
        var head = new SingleHeadAttention(256, 64, 0, 0.01, 300, 0.1);
        var output = head.Forward(new SignalMoments(0, 2, 0.3));
        Assert.Equal(256 * 0.01 * 2 * (0.3 + 0.7 / (300 * 0.9)), output.Variance, 14);
        Assert.Equal(256 * 0.01 * 2 * (0.3 + 0.7 / 300), output.Covariance, 14);
    }

    [Fact]
    public void ComposedFeedForwardBlockEqualsTheClosedForms()
    {
        // ReLU, 4d, both weights sf2: variance 2 d^2 sf2^2 s2 / (1 - p), the same backward gain, and the official
        // correlation (1 - p)(r + (sqrt(1 - r^2) - r arccos r) / pi) (2.10).
        const int d = 128;
        const double sf2 = 0.003, p = 0.1, s2 = 1.7, r = 0.35;
        var block = new FeedForwardBlock(d, 4 * d, sf2, sf2, p, new Relu());
        var output = block.Forward(new SignalMoments(0, s2, r));
        double gain = 2.0 * d * d * sf2 * sf2 / (1 - p);
        Assert.Equal(gain * s2, output.Variance, 13);
        Assert.Equal(FeedForwardBlock.OfficialOutputCorrelation(r, p), output.Correlation, 14);
        Assert.Equal(gain, block.Backward(new SignalMoments(0, s2, r), new GradientMoments(1, 0)).Variance, 13);
    }

    [Fact]
    public void DslmBlocksHaveUnitVarianceAtTheirInit()
    {
        // DSLM's FFN std gives variance exactly 1; its V/O std gives 1 in the long-sequence, small-Q/K limit and
        // correlation 1 - p there (dslm-theory.md 4.1, 2.10).
        const int d = 1024;
        const double p = 0.1, r = 0.3;
        double sf2 = Math.Pow(DslmInit.FeedForwardStd(d, p), 2);
        Assert.Equal(1.0, new FeedForwardBlock(d, 4 * d, sf2, sf2, p, new Relu()).Forward(new SignalMoments(0, 1, r)).Variance, 13);
        double sa2 = Math.Pow(DslmInit.ValueOutputStd(d, p, r), 2);
        var attention = new AttentionBlock(d, 16, 0, sa2, sa2, 100_000_000, p).Forward(new SignalMoments(0, 1, r));
        Assert.Equal(1.0, attention.Variance, 6);
        Assert.Equal(AttentionBlock.OfficialOutputCorrelation(p), attention.Correlation, 6);
    }

    [Fact]
    public void AttentionBlockBackwardEqualsTheDerivedGain()
    {
        // g2_in / g2_out = d sa2 d sa2 (rg (L - 1) / L + 1 / (L (1 - p)^2)) (dslm-theory.md 2.10).
        const int d = 256, length = 512;
        const double sa2 = 0.004, p = 0.1, rg = 0.4;
        var block = new AttentionBlock(d, 4, 1.0 / d, sa2, sa2, length, p);
        double expected = d * sa2 * d * sa2 * (rg * (length - 1) / length + 1 / (length * (1 - p) * (1 - p)));
        Assert.Equal(expected, block.Backward(new SignalMoments(0, 1, 0.2), new GradientMoments(1, rg)).Variance, 13);
    }

    [Fact]
    public void ZipfCollisionProbabilityForOtherExponents()
    {
        // p ~ 1, 1/4, 1/9 over three ids: sum p^2 = (1 + 1/16 + 1/81) / (1 + 1/4 + 1/9)^2.
        Assert.Equal((1 + 1.0 / 16 + 1.0 / 81) / Math.Pow(1 + 1.0 / 4 + 1.0 / 9, 2), Embedding.ZipfCollisionProbability(3, exponent: 2), 14);
        Assert.Equal(Embedding.ZipfCollisionProbability(50), Embedding.ZipfCollisionProbability(50, exponent: 1), 15);
        Assert.Equal(1.0 / 7, Embedding.ZipfCollisionProbability(7, exponent: 0), 14); // uniform
    }

    [Fact]
    public void EmbeddingCorrelations()
    {
        // Zipf over BERT's 30522 tokens gives ~0.014, far from the official 0.221 (dslm-theory.md 2.8).
        double zipf = Embedding.ZipfCollisionProbability(30522);
        Assert.Equal(0.014, zipf, 3);
        Assert.InRange(Embedding.ZipfCollisionApproximation(30522) / zipf, 0.99, 1.01);
        // Three tables of std sqrt((1 - p)/3) and the embedding dropout: variance 1, r = 0.221 (1 - p) = 0.198900,
        // the r at layer 0 of the official recursion (2.8, 5.2).
        var output = Embedding.Output(3, DslmInit.EmbeddingStd(0.1, 3), 0.1, Embedding.OfficialTokenCorrelation);
        Assert.Equal(1.0, output.Variance, 14);
        Assert.Equal(0.198900, output.Correlation, 6);
    }

    [Fact]
    public void NonZeroMeanIsRejectedWhereTheFormulasAssumeZero()
    {
        var shifted = new SignalMoments(0.5, 1, 0.2);
        Assert.Throws<ArgumentException>(() => new Relu().Forward(shifted));
        Assert.Throws<ArgumentException>(() => new Gelu().Backward(shifted, UnitGradient));
        Assert.Throws<ArgumentException>(() => new SingleHeadAttention(8, 8, 0, 1, 10, 0).Forward(shifted));
        Assert.Throws<ArgumentException>(() => Softmax.OutputVariance(shifted, 10, SoftmaxApproximation.Full));
    }

    [Fact]
    public void GradientsOfTwoPathsAdd()
    {
        var sum = new GradientMoments(1, 0.2) + new GradientMoments(3, 0.6);
        Assert.Equal(4.0, sum.Variance);
        Assert.Equal((0.2 + 1.8) / 4, sum.Correlation, 15);
    }
}
