using DeepScaleLM.Tests.Support;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Tests;

/// <summary>E-SPA against the test vectors of spa-theory.md 2.4 and checks 2-3 of its section 6; Value-SkipInit (2.5).</summary>
public sealed class TheoryESpaTests
{
    // T = 6 tokens, L = 4 layers, gamma_L = 0.005 (spa-theory.md 2.4).
    private static readonly ESpaLayer[] Causal = ExponentialSignalPropagation.Build(6, 4, 0.005).ToArray();

    /// <summary>
    /// The plan's contract: its logit pre-scale is DSLM's 1/sqrt(d Var(E)) divided by the predicted final stream std
    /// (well above 1 here, 24 blocks at T 64), so the full recursion predicts unit logit variance. The independent check,
    /// a real model's logits at init, is LayersModelTests.ESpaLogitsHaveUnitVarianceAtInit.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ESpaPlanGivesUnitLogitVariance(bool causal)
    {
        var shape = new TransformerShape(24, 128, 4, 64, 0) { Causal = causal };
        var plan = ESpaInit.Plan(shape);
        var prediction = DepthRecursion.Predict(shape, plan, NormPlacement.None, 0);
        Assert.Equal(1, prediction.LogitVariance, 9);
        double final = prediction.Layers.Last().Stream.Variance;
        Assert.True(final > 3, $"final stream variance {final}");
        Assert.Equal(DslmInit.LogitScale(128, plan.EmbeddingStd * plan.EmbeddingStd) / Math.Sqrt(final), plan.LogitScale, 9);
    }

    [Fact]
    public void GammaAndAlphaSchedulesMatch()
    {
        double[] gamma = [0.189777, 0.052542, 0.016006, 0.005000];
        double[] alpha = [0.561990, 0.315833, 0.177495, 0.099751];
        for (int l = 0; l < 4; l++)
        {
            Assert.Equal(gamma[l], Causal[l].Gamma, 6);
            Assert.Equal(alpha[l], Causal[l].Alpha, 6);
        }
    }

    [Fact]
    public void FirstLayerAttentionMatchesAllRows()
    {
        var rows = SpaCheckValues.A1Rows;
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                Assert.InRange(Math.Abs(Causal[0].Attention[i, j] - (j <= i ? rows[i][j] : 0)), 0, 1e-5);
    }

    [Fact]
    public void LaterLayersLastRowsAndRescalesMatch()
    {
        AssertRow([0.39223, 0.05841, 0.06156, 0.06488, 0.06838, 0.56199], Causal[1].Attention, 5);
        AssertRow([0.43319, 0.00603, 0.00606, 0.00609, 0.00612, 0.56199], Causal[3].Attention, 5);
        AssertClose(SpaCheckValues.D1, Causal[0].Rescale);
        AssertClose([1, 1.045958, 1.089564, 1.130938, 1.170194, 1.207441], Causal[1].Rescale);
        AssertClose([1, 1.003936, 1.007852, 1.011749, 1.015626, 1.019484], Causal[3].Rescale);
    }

    [Fact]
    public void EveryLayerMapsThePreviousKernelToItsTarget()
    {
        var previous = ExponentialSignalPropagation.Kernel(6, double.PositiveInfinity);
        foreach (var layer in Causal)
        {
            AssertKernelMap(layer.Attention, previous, layer.Kernel, 1e-12);
            previous = layer.Kernel;
        }
    }

    [Theory]
    [InlineData(6, 0.189777)]
    [InlineData(64, 0.005)]
    [InlineData(64, 2.0)]
    public void ClosedFormFactorIsTheCholeskyFactor(int tokens, double gamma)
    {
        // L lower triangular with L L^T = Sigma (spa-theory.md 2.2 derived) is the Cholesky factor.
        var factor = ExponentialSignalPropagation.CholeskyFactor(tokens, gamma);
        var kernel = ExponentialSignalPropagation.Kernel(tokens, gamma);
        for (int i = 0; i < tokens; i++)
            for (int j = 0; j < tokens; j++)
            {
                double product = 0;
                for (int k = 0; k < tokens; k++) product += factor[i, k] * factor[j, k];
                Assert.InRange(Math.Abs(product - kernel[i, j]), 0, 1e-12);
                if (j > i) Assert.Equal(0.0, factor[i, j]);
            }
    }

    [Fact]
    public void LongSequenceUnderflowBecomesAMaskedEntry()
    {
        // With 48 layers gamma_1 ~ 1.2, so exp(-gamma_1 i) underflows float64 beyond i ~ 620: those entries are 0 and
        // their bias -infinity, which is what softmax needs; the row still sums to D.
        var first = ExponentialSignalPropagation.Build(700, 48).First();
        Assert.Equal(0.0, first.Attention[699, 0]);
        Assert.True(double.IsNegativeInfinity(first.Bias[699, 0]));
        double sum = 0;
        for (int j = 0; j < 700; j++) sum += first.Attention[699, j];
        Assert.Equal(first.Rescale[699], sum, 12);
    }

    [Fact]
    public void BiasIsNegativeInfinityExactlyAboveTheDiagonal()
    {
        foreach (var layer in Causal)
            for (int i = 0; i < 6; i++)
                for (int j = 0; j < 6; j++)
                {
                    Assert.Equal(j > i, double.IsNegativeInfinity(layer.Bias[i, j]));
                    Assert.Equal(j > i, layer.Attention[i, j] == 0);
                    if (j <= i) Assert.True(layer.Attention[i, j] > 0);
                }
    }

    [Fact]
    public void RescaledSoftmaxOfTheBiasIsTheAttentionMatrix()
    {
        // spa-theory.md 6 check 3 without the attention op: with W_Q = 0 the logits are B_l, so the layer's matrix is
        // D_l * softmax(B_l) row by row.
        foreach (var layer in Causal)
            for (int i = 0; i < 6; i++)
            {
                double max = double.NegativeInfinity, sum = 0;
                for (int j = 0; j < 6; j++) max = Math.Max(max, layer.Bias[i, j]);
                for (int j = 0; j < 6; j++) sum += Math.Exp(layer.Bias[i, j] - max);
                for (int j = 0; j < 6; j++)
                    Assert.InRange(Math.Abs(layer.Rescale[i] * Math.Exp(layer.Bias[i, j] - max) / sum - layer.Attention[i, j]), 0, 1e-12);
            }
    }

    [Fact]
    public void BidirectionalSymmetricRootAlsoMapsTheKernels()
    {
        var layers = ExponentialSignalPropagation.Build(6, 4, 0.005, causal: false).ToArray();
        var previous = ExponentialSignalPropagation.Kernel(6, double.PositiveInfinity);
        foreach (var layer in layers)
        {
            AssertKernelMap(layer.Attention, previous, layer.Kernel, 1e-12);
            Assert.Equal(Causal[layer.Layer - 1].Gamma, layer.Gamma);
            previous = layer.Kernel;
        }
    }

    [Fact]
    public void BidirectionalLongerSequenceKeepsRoundingNoiseOutOfTheBias()
    {
        // Far from the diagonal the symmetric root's true entries fall below float64 resolution; the computed ones must
        // not make the construction fail, and the layer must still map the kernels and equal D softmax(B).
        // T = 128 with 8 layers: layer 1's A[0, 85] came out -7.5e-17 before the noise was zeroed.
        var layer = ExponentialSignalPropagation.Build(128, 8, 0.005, causal: false).First();
        AssertKernelMap(layer.Attention, ExponentialSignalPropagation.Kernel(128, double.PositiveInfinity), layer.Kernel, 1e-12);
        for (int i = 0; i < 128; i++)
            for (int j = 0; j < 128; j++)
            {
                Assert.True(layer.Attention[i, j] >= 0);
                Assert.InRange(Math.Abs(layer.Rescale[i] * Math.Exp(layer.Bias[i, j]) - layer.Attention[i, j]), 0, 1e-12);
            }
    }

    [Fact]
    public void ValueSkipInitStartsAsTheIdentity()
    {
        var mixed = ValueSkipInit.Initial.Mix(Causal[0].Attention);
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                Assert.Equal(i == j ? 1.0 : 0.0, mixed[i, j]);
    }

    private static void AssertKernelMap(double[,] a, double[,] from, double[,] to, double tolerance)
    {
        int n = a.GetLength(0);
        var aFrom = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int k = 0; k < n; k++)
                for (int m = 0; m < n; m++) aFrom[i, m] += a[i, k] * from[k, m];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double mapped = 0;
                for (int m = 0; m < n; m++) mapped += aFrom[i, m] * a[j, m];
                Assert.InRange(Math.Abs(mapped - to[i, j]), 0, tolerance);
            }
    }

    private static void AssertRow(double[] expected, double[,] matrix, int row)
    {
        for (int j = 0; j < expected.Length; j++) Assert.InRange(Math.Abs(matrix[row, j] - expected[j]), 0, 1e-5);
    }

    private static void AssertClose(double[] expected, double[] actual)
    {
        for (int i = 0; i < expected.Length; i++) Assert.InRange(Math.Abs(actual[i] - expected[i]), 0, 1e-5);
    }
}

/// <summary>The TAT leaky-ReLU C-map and slope solver against spa-theory.md 3 and 3.1 (check 1 of its section 6).</summary>
public sealed class TheoryTatTests
{
    [Fact]
    public void CorrelationMapFixesOneAndGivesOneOverPiForRelu()
    {
        foreach (double a in new[] { 0.0, 0.1, 0.5, 0.9 })
            Assert.Equal(1.0, LeakyReluKernel.CorrelationMap(1, a), 15);
        Assert.Equal(0.318310, LeakyReluKernel.CorrelationMap(0, 0), 6);
        Assert.Equal(1 / Math.PI, LeakyReluKernel.CorrelationMap(0, 0), 15);
    }

    [Fact]
    public void CorrelationMapEqualsSimplEsTForm()
    {
        // C(c) = c + (1 - a)^2 / (pi (1 + a^2)) (sqrt(1 - c^2) - c arccos c), the form spa-theory.md 3 derives.
        foreach (double a in new[] { 0.0, 0.2, 0.6 })
            foreach (double c in new[] { -0.5, 0.0, 0.3, 0.8 })
                Assert.Equal(c + (1 - a) * (1 - a) / (Math.PI * (1 + a * a)) * (Math.Sqrt(1 - c * c) - c * Math.Acos(c)),
                    LeakyReluKernel.CorrelationMap(c, a), 14);
    }

    [Theory]
    [InlineData(13, 0.024199, 1.413800)]
    [InlineData(16, 0.104499, 1.406555)]
    [InlineData(18, 0.146135, 1.399351)]
    [InlineData(24, 0.238503, 1.375629)]
    [InlineData(36, 0.351121, 1.334350)]
    [InlineData(48, 0.421162, 1.303338)]
    [InlineData(72, 0.508389, 1.260653)]
    [InlineData(96, 0.563117, 1.232269)]
    [InlineData(192, 0.673914, 1.172759)]
    public void SlopeTableMatches(int chainLength, double slope, double outputScale)
    {
        var solution = TatLeakyRelu.Solve(chainLength);
        Assert.InRange(Math.Abs(solution.NegativeSlope - slope), 0, 1e-6);
        Assert.InRange(Math.Abs(solution.OutputScale - outputScale), 0, 1e-6);
        Assert.Equal(0.9, TatLeakyRelu.ChainZeroCorrelation(chainLength, solution.NegativeSlope), 6);
    }

    [Fact]
    public void ReluChainValuesAroundTheThreshold()
    {
        Assert.Equal(0.897148, TatLeakyRelu.ChainZeroCorrelation(12, 0), 6);
        Assert.Equal(0.907099, TatLeakyRelu.ChainZeroCorrelation(13, 0), 6);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(6)]
    [InlineData(12)]
    public void ShortChainsHaveNoSolution(int chainLength)
    {
        var error = Assert.Throws<ArgumentException>(() => TatLeakyRelu.Solve(chainLength));
        Assert.Contains("may not be able to achieve", error.Message);
        Assert.Contains($"chain of {chainLength} activations", error.Message);
    }
}
