using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Tests;

/// <summary>
/// Whole-model predictions against the depth behaviour of dslm-theory.md 3, 5.2-5.3 and checks 3, 4 and 6 of section 7,
/// at the official figure setting: 192 layers, d = 1024, 16 heads, L = 256, p = 0.1, three embedding tables.
/// </summary>
public sealed class TheoryDepthRecursionTests
{
    private static readonly TransformerShape Figures = new(Layers: 192, ModelWidth: 1024, Heads: 16, SequenceLength: 256, Dropout: 0.1);

    private static SublayerPrediction[] Layers(InitPlan init, NormPlacement norm) =>
        DepthRecursion.Predict(Figures, init, norm).Layers.ToArray();

    [Theory]
    [InlineData(NormPlacement.PreLayerNorm)]
    [InlineData(NormPlacement.PostLayerNorm)]
    public void DslmKeepsTheStreamAtUnitVarianceAndTheLogitsAtOne(NormPlacement norm)
    {
        // Check 3 (residual variance in 0.95-1.05 at every layer) and check 6 (unit logit variance).
        var init = DslmInit.Plan(Figures, ResidualScaling.OfficialDeepScaleLM, embeddingTables: 3);
        var prediction = DepthRecursion.Predict(Figures, init, norm);
        Assert.All(prediction.Sublayers, sublayer => Assert.InRange(sublayer.Stream.Variance, 0.95, 1.05));
        Assert.Equal(1.0, prediction.LogitVariance, 12);
    }

    [Fact]
    public void DslmPreLnCorrelationTracksTheOfficialRecursion()
    {
        // The official recursion is the same model in the long-sequence limit without LN's (1 - 1/d): its final r is
        // 0.659716 (5.2); the finite-L component chain must stay close to it.
        var layers = Layers(DslmInit.Plan(Figures, ResidualScaling.OfficialDeepScaleLM, embeddingTables: 3), NormPlacement.PreLayerNorm);
        Assert.InRange(layers[^1].Stream.Correlation, 0.659716 - 0.01, 0.659716 + 0.01);
    }

    [Fact]
    public void XavierPreLnVarianceGrowsLinearlyToTheMeasuredLevel()
    {
        // The authors' predicted curve is var_last * (i + 1) / N; the figure reads ~407 at layer 192 (dslm-theory.md 3).
        var layers = Layers(XavierInit.Plan(Figures, embeddingTables: 3), NormPlacement.PreLayerNorm);
        double last = layers[^1].Stream.Variance;
        Assert.InRange(last, 407 * 0.9, 407 * 1.1);
        for (int i = 10; i < layers.Length; i++)
        {
            double linear = last * (i + 1) / layers.Length;
            Assert.InRange(layers[i].Stream.Variance, 0.9 * linear, 1.1 * linear);
        }
    }

    [Fact]
    public void XavierPreLnGradientFallsTowardTheOutput()
    {
        // Each LN divides the gradient entering its block by a stream variance that grows with depth, so the layers
        // nearest the input get the largest gradient, falling hyperbolically: the authors' predicted curve is
        // b_i = b_{i-1} / sqrt(1 + 1/i) (dslm-theory.md 3). Without the LN division the fall would be exponential.
        // That curve back-propagates attention through V only; the logits' path into Q and K adds most where r is
        // lowest, so the first step may exceed it by a few percent (1.6 % here).
        var layers = Layers(XavierInit.Plan(Figures, embeddingTables: 3), NormPlacement.PreLayerNorm);
        for (int i = 1; i < layers.Length; i++)
        {
            double ratio = Math.Sqrt(layers[i - 1].StreamGradient.Variance / layers[i].StreamGradient.Variance);
            Assert.InRange(ratio, 1, Math.Sqrt(1 + 1.0 / i) * (i == 1 ? 1.03 : 1));
        }
    }

    [Fact]
    public void XavierPostLnGradientShrinksGeometricallyTowardTheInput()
    {
        // The figure shows ~1.024x per layer (log-norm -9.5 to -5.1 over 191 layers, dslm-theory.md 3); away from
        // both ends the per-layer gradient-norm ratio must be in that range.
        var layers = Layers(XavierInit.Plan(Figures, embeddingTables: 3), NormPlacement.PostLayerNorm);
        double perLayer = Math.Pow(layers[150].StreamGradient.Variance / layers[50].StreamGradient.Variance, 0.5 / 100);
        Assert.InRange(perLayer, 1.01, 1.04);
    }

    [Fact]
    public void DeepNetKeepsPostLnGradientsFlat()
    {
        // alpha = (2N)^(1/4) makes every LN input variance ~alpha^2 whatever the branch adds, so the per-sublayer LN
        // divisions no longer compound; check 3's bound of 1.2 on max/min.
        var gradients = Layers(DeepNetInit.Plan(Figures, embeddingTables: 3), NormPlacement.PostLayerNorm)
            .Select(layer => layer.StreamGradient.Variance).ToArray();
        Assert.InRange(Math.Sqrt(gradients.Max() / gradients.Min()), 1, 1.2);
    }
}
