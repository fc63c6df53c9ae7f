using System.Collections.Concurrent;
using System.Text.Json;
using DeepScaleLM.Cli;
using DeepScaleLM.Native.Cpu;
using DeepScaleLM.Theory;

namespace DeepScaleLM.Tests;

/// <summary>
/// <c>dslm simulate</c>: the real model at init (Layers, CPU, fp32) against Theory's DepthRecursion for the same model,
/// block by block (issue 4's "theory and simulation agreeing layer by layer", at a size the suite affords: 24 blocks,
/// d = 64, L = 64, batch 2, 8 seeds, a few seconds each), the Xavier growth the theory predicts, and the position-aware
/// init's unit variance where the official init sags (open-problems.md 1). The 192-layer checks are recorded in
/// docs/theory.md ("Simulation").
/// </summary>
public sealed class SimulateTests
{
    // 8, not 3: the std over 3 seeds is a poor estimate of the spread (0.009 where 10 seeds give 0.066 for the DSLM
    // causal variance at block 12), so 3-seed tolerances could pass or fail on the draw of the seeds.
    private const int Seeds = 8;
    private static readonly ConcurrentDictionary<string, Simulation> Cache = new();

    /// <summary>A 24-block (or <paramref name="layers"/>), d = 64, L = 64 model on i.i.d. uniform bytes, simulated over
    /// <see cref="Seeds"/> seeds of batch 2 (cached).</summary>
    private static Simulation Simulate(string norm, string init, bool causal, int layers = 24, int width = 64,
        HeadGradient top = HeadGradient.Loss, double? branchVariance = null, bool untiedHead = false) =>
        Cache.GetOrAdd($"{norm}/{init}/{causal}/{layers}/{width}/{top}/{branchVariance}/{untiedHead}", _ =>
    {
        var shape = new TransformerShape(layers, width, 4, 64, 0) { Causal = causal };
        double r0 = 1.0 / 256 / 2; // uniform over 256 ids, token + position tables: sum p_i^2 / 2
        var settings = new ModelSettings(norm, init, shape, 256, causal, 2, branchVariance, "uniform", r0);
        using var backend = new CpuBackend();
        return SimulateCommand.Run(backend, settings, SimulatedInputs.Uniform, Seeds, batch: 2, top, untiedHead);
    });

    /// <summary>
    /// Every block's measured variance, r and gradient variance lie within the seed spread of the theory's prediction.
    /// Tolerance: 3 standard errors of the 8-seed mean (3 std / sqrt(8); the std is over seeds, measured) plus a model
    /// allowance of 0.05 for the variance, 0.05 for r and 0.15 relative for the gradient: at d = 64 and L = 64 the
    /// mean-field formulas carry O(1/sqrt(d)) and O(1/L) errors (docs/theory.md, "Which assumptions break where"), and
    /// r's measurement error over 2 x 64 samples per token is ~0.03.
    /// </summary>
    [Theory]
    [InlineData("pre", true)]
    [InlineData("post", true)]
    [InlineData("pre", false)]
    public void DslmMeasurementAgreesWithTheoryBlockByBlock(string norm, bool causal)
    {
        var simulation = Simulate(norm, "dslm", causal);
        Assert.Equal(24, simulation.Layers.Count);
        foreach (var layer in simulation.Layers)
        {
            AssertWithin(layer.Layer, "variance", layer.ForwardVariance, layer.Theory.Stream.Variance, 0.05);
            AssertWithin(layer.Layer, "r", layer.Correlation, layer.Theory.Stream.Correlation, 0.05);
            double gradient = layer.Theory.StreamGradient.Variance;
            AssertWithin(layer.Layer, "gradient variance", layer.GradientVariance, gradient, 0.15 * gradient);
        }
    }

    /// <summary>
    /// Post-LN at a depth beyond the width: 96 blocks of d = 64. The theory once shrank r by the Gaussian LayerNorm factor
    /// (1 - 1/d) at every one of the 192 LayerNorms on the skip path, predicting r = 0.14 at the last block where the
    /// model measures 0.45; with the LayerNorm factor scaled by the input's norm fluctuation (a LayerNorm output has
    /// none) every block's r is within the tolerance above.
    /// </summary>
    [Fact]
    public void PostLnCorrelationFollowsTheoryAtDepthsBeyondTheWidth()
    {
        var simulation = Simulate("post", "dslm", causal: false, layers: 96);
        foreach (var layer in simulation.Layers)
            AssertWithin(layer.Layer, "r", layer.Correlation, layer.Theory.Stream.Correlation, 0.05);
        Assert.True(simulation.Layers[^1].Correlation.Mean > 0.35, $"r at the last block: {simulation.Layers[^1].Correlation.Mean}");
    }

    /// <summary>
    /// Vanilla E-SPA stacks (no skips, no LayerNorm; spa-theory.md 1-4) under the top the gradient recursion assumes, an
    /// N(0, 1) head gradient independent of the forward pass (<see cref="HeadGradient.Independent"/>): every block's
    /// variance (growing to ~9 bidirectional, ~5 causal, as the TAT MLP raises correlations E-SPA's schedule does not
    /// plan for), r and gradient variance follow the theory, the gradient falling ~5x from the top and rising again
    /// toward the input. d = 128, because at d = 64 the seed spread of the bottom blocks' gradient exceeds its mean.
    /// Allowances: 10 % of the variance, 0.05 for r, 20 % of the gradient. The loss's own gradient is not independent
    /// of the forward pass and grows ~15x past the theory toward the input: <see cref="ESpaHeadGradientTests"/>.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ESpaMeasurementAgreesWithTheoryUnderAnIndependentHeadGradient(bool causal)
    {
        var simulation = Simulate("none", "espa", causal, width: 128, top: HeadGradient.Independent);
        foreach (var layer in simulation.Layers)
        {
            double variance = layer.Theory.Stream.Variance, gradient = layer.Theory.StreamGradient.Variance;
            AssertWithin(layer.Layer, "variance", layer.ForwardVariance, variance, 0.1 * variance);
            AssertWithin(layer.Layer, "r", layer.Correlation, layer.Theory.Stream.Correlation, 0.05);
            AssertWithin(layer.Layer, "gradient variance", layer.GradientVariance, gradient, 0.2 * gradient);
        }
        Assert.True(simulation.Layers[^1].Theory.Stream.Variance > 3, "the TAT MLP's drift the theory should show");
    }

    private static void AssertWithin(int layer, string quantity, SeedSpread measured, double theory, double allowance)
    {
        double tolerance = 3 * measured.Std / Math.Sqrt(Seeds) + allowance;
        Assert.True(Math.Abs(measured.Mean - theory) <= tolerance,
            $"block {layer} {quantity}: measured {measured.Mean:G4} +- {measured.Std:G3} (std over seeds), theory {theory:G4}, tolerance {tolerance:G3}");
    }

    /// <summary>
    /// Xavier Pre-LN (dslm-theory.md 3): plain residuals add each branch's variance, so the stream grows about linearly
    /// with depth; the theory says so, and the measurement follows it within 15% at the last block.
    /// </summary>
    [Fact]
    public void XavierPreLnVarianceGrowsAsTheoryPredicts()
    {
        var simulation = Simulate("pre", "xavier", causal: false);
        var (first, last) = (simulation.Layers[0], simulation.Layers[^1]);
        Assert.True(last.Theory.Stream.Variance > 5 * first.Theory.Stream.Variance,
            $"theory: {first.Theory.Stream.Variance:G4} at block 0, {last.Theory.Stream.Variance:G4} at block 23");
        Assert.True(last.ForwardVariance.Mean > 5 * first.ForwardVariance.Mean,
            $"measured: {first.ForwardVariance.Mean:G4} at block 0, {last.ForwardVariance.Mean:G4} at block 23");
        Assert.InRange(last.ForwardVariance.Mean / last.Theory.Stream.Variance, 0.85, 1.15);
    }

    /// <summary>
    /// open-problems.md 1 at test size: on i.i.d. bytes (r0 = 0.002) under causal attention the official init's residual
    /// variance sags below 0.92 (theory: 0.88 at worst here), while the position-aware init, which makes every
    /// attention sublayer unit-variance at every position, is exactly 1 in theory and measures 1 within the seed
    /// tolerance at every block (3 standard errors + 0.03) and within 0.03 on average over the blocks. At d = 64 and
    /// batch 2 one block's 3-seed std reaches 0.2, so a flat +-0.03 per block is a claim for the 48-block d = 256 run
    /// in docs/theory.md, not for this size.
    /// </summary>
    [Fact]
    public void PositionAwareInitHoldsUnitVarianceWhereTheOfficialSags()
    {
        var official = Simulate("pre", "dslm", causal: true);
        Assert.True(official.Layers.Min(l => l.Theory.Stream.Variance) < 0.92);
        Assert.True(official.Layers.Min(l => l.ForwardVariance.Mean) < 0.92,
            $"official init: measured residual variance {official.Layers.Min(l => l.ForwardVariance.Mean):G4} at worst");
        var positionAware = Simulate("pre", "dslm-position", causal: true);
        foreach (var layer in positionAware.Layers)
        {
            Assert.Equal(1, layer.Theory.Stream.Variance, 1e-6);
            AssertWithin(layer.Layer, "variance", layer.ForwardVariance, 1, 0.03);
        }
        Assert.InRange(positionAware.Layers.Average(l => l.ForwardVariance.Mean), 0.97, 1.03);
    }

    /// <summary>
    /// open-problems.md's gradient target (stream-gradient norm max/min at most 1.2) next to its variance target: the
    /// position-aware init with half the official branch weight (beta^2 = 1/N, k = 1; the drift of the gradient grows with
    /// k) and an LM head of its own, on the LM loss: 1.10 measured, 1.07 theory here. With the tied head the loss
    /// gradient at init points along the input tokens' embeddings, which grows it toward the input at larger sizes
    /// (docs/theory.md).
    /// </summary>
    [Fact]
    public void PositionAwareInitWithHalfTheBranchWeightMeetsTheGradientTarget()
    {
        var simulation = Simulate("pre", "dslm-position", causal: true, branchVariance: 1.0 / 48, untiedHead: true);
        Assert.True(simulation.TheoryGradientNormRatio <= 1.2, $"theory: {simulation.TheoryGradientNormRatio:G4}");
        Assert.True(simulation.GradientNormRatio <= 1.2, $"measured: {simulation.GradientNormRatio:G4}");
        foreach (var layer in simulation.Layers)
        {
            AssertWithin(layer.Layer, "variance", layer.ForwardVariance, 1, 0.03);
            double gradient = layer.Theory.StreamGradient.Variance;
            AssertWithin(layer.Layer, "gradient variance", layer.GradientVariance, gradient, 0.15 * gradient);
        }
        Assert.InRange(simulation.Layers.Average(l => l.ForwardVariance.Mean), 0.97, 1.03);
    }

    [Theory]
    [InlineData("zipf", 1.0)]
    [InlineData("zipf2", 2.0)]
    public void CommandWritesTheoryAndMeasurementWithSpreadAsJson(string tokens, double exponent)
    {
        string path = Path.Combine(Path.GetTempPath(), $"dslm-simulate-{Guid.NewGuid():N}.json");
        try
        {
            var (code, output, error) = CliTests.Dslm(["simulate", "--layers", "3", "--d-model", "16", "--heads", "2", "--seq-len", "8",
                "--seeds", "2", "--tokens", tokens, "--vocab", "50", "--json", path]);
            Assert.True(code == 0, error);
            Assert.Contains("gradient norm max/min", output);
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            // r0 of p_i ~ 1/i^s over 50 ids: (sum 1/i^2s) / (sum 1/i^s)^2 / 2, from the sums directly.
            double squares = Enumerable.Range(1, 50).Sum(i => Math.Pow(i, -2 * exponent)), sum = Enumerable.Range(1, 50).Sum(i => Math.Pow(i, -exponent));
            Assert.Equal(squares / (sum * sum) / 2, root.GetProperty("config").GetProperty("token_correlation").GetDouble(), 12);
            Assert.Equal(2, root.GetProperty("seeds").GetInt32());
            var layers = root.GetProperty("layers").EnumerateArray().ToArray();
            Assert.Equal(3, layers.Length);
            foreach (var key in new[] { "forward_variance", "correlation", "grad_variance" })
                foreach (var suffix in new[] { "", "_std", "_spread" })
                    Assert.True(double.IsFinite(layers[0].GetProperty(key + suffix).GetDouble()), key + suffix);
            Assert.True(layers[2].GetProperty("theory_forward_variance").GetDouble() > 0);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("--tokens", "bytes", "--tokens")]
    [InlineData("--seeds", "0", "--seeds")]
    [InlineData("--norm", "none", "--norm none")]
    [InlineData("--head-gradient", "random", "--head-gradient")]
    public void BadFlagsAreRejectedWithTheirName(string flag, string value, string named)
    {
        var (code, _, error) = CliTests.Dslm(["simulate", "--layers", "2", "--d-model", "16", "--heads", "2", "--seq-len", "4", flag, value]);
        Assert.Equal(2, code);
        Assert.Contains(named, error);
    }
}
