using DeepScaleLM.Theory.Components;

namespace DeepScaleLM.Theory.Schemes;

/// <summary>
/// A vanilla transformer (no skips, no LayerNorm; spa-theory.md 1) initialised for faithful signal propagation:
/// E-SPA attention (zero queries, bias B_l and rescale D_l from <see cref="ExponentialSignalPropagation"/>, so each
/// layer's attention matrix is A_l and the token kernel follows Sigma_l; 2.1-2.2), SUO orthogonal V, attention output
/// and feed-forward projections (4), and the TAT leaky ReLU solved for a chain of one activation per block (3).
/// The residual is lam = 0, beta = 1: each sublayer replaces the stream.
/// </summary>
public static class ESpaInit
{
    /// <summary>The E-SPA + TAT init of a vanilla stack.</summary>
    /// <param name="shape">The model (its <see cref="TransformerShape.Causal"/> picks Cholesky factors or symmetric roots).</param>
    /// <param name="finalGamma">gamma_L, the last layer's kernel decay (0.005 by default, spa-theory.md 2.2).</param>
    /// <param name="target">eta, TAT's C_f(0) target for the feed-forward chain (0.9 by default).</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    /// <exception cref="ArgumentException">No leaky-ReLU slope reaches eta for this depth (12 or fewer blocks at eta = 0.9).</exception>
    public static InitPlan Plan(TransformerShape shape, double finalGamma = ExponentialSignalPropagation.DefaultFinalGamma,
        double target = TatLeakyRelu.DefaultTarget, int embeddingTables = 2)
    {
        var activation = TatLeakyRelu.Solve(shape.Layers, target);
        var plan = Unscaled(shape, finalGamma, embeddingTables, DslmInit.EmbeddingStd(shape.Dropout, embeddingTables))
            with { FeedForwardNegativeSlope = activation.NegativeSlope };
        return plan with { LogitScale = UnitLogitScale(shape, plan, new ScaledLeakyRelu(activation.NegativeSlope), 0) };
    }

    /// <summary>
    /// The logit pre-scale that gives the vanilla stack unit predicted logit variance. DSLM's 1/sqrt(d Var(E))
    /// (dslm-theory.md 4.1) assumes a unit-variance head input, which a final LayerNorm provides; a vanilla stack's head
    /// reads its last stream, whose variance the TAT MLP moves off 1 (to ~9 over 24 bidirectional blocks at T = 64), so
    /// that pre-scale leaves the logits at variance ~9 and the softmax sharply peaked, and the loss gradient at init then
    /// points along the stream's own common direction (docs/theory.md, "Vanilla E-SPA stacks"). Here it is divided by
    /// the final stream's predicted standard deviation (the recursion's forward pass, O(layers T^3)).
    /// </summary>
    /// <param name="shape">The model.</param>
    /// <param name="embeddingTables">How many embedding tables are summed.</param>
    /// <param name="embeddingStd">The std of each embedding table (the tied head's).</param>
    /// <param name="activation">The feed-forward activation's moments (TAT's scaled leaky ReLU, or GeLU).</param>
    /// <param name="tokenCorrelation">r0 of the inputs.</param>
    /// <param name="finalGamma">gamma_L of the E-SPA schedule.</param>
    public static double UnitLogitScale(TransformerShape shape, int embeddingTables, double embeddingStd, IMomentMap activation,
        double tokenCorrelation, double finalGamma = ExponentialSignalPropagation.DefaultFinalGamma) =>
        UnitLogitScale(shape, Unscaled(shape, finalGamma, embeddingTables, embeddingStd), activation, tokenCorrelation);

    /// <summary><paramref name="plan"/>'s DSLM pre-scale divided by the final stream std its forward pass predicts.</summary>
    private static double UnitLogitScale(TransformerShape shape, InitPlan plan, IMomentMap activation, double tokenCorrelation) =>
        plan.LogitScale / Math.Sqrt(DepthRecursion.PredictForward(shape, plan, NormPlacement.None, tokenCorrelation, activation).LogitVariance);

    /// <summary>The plan's weights with DSLM's logit pre-scale.</summary>
    private static InitPlan Unscaled(TransformerShape shape, double finalGamma, int embeddingTables, double embeddingStd)
    {
        double d = shape.ModelWidth;
        // SUO with scale max(sqrt(fan_out / fan_in), 1) has entries of mean square 1 / fan_in for both shapes (spa-theory.md 4).
        double square = Math.Sqrt(1 / d);
        var valueOutput = XavierInit.Repeat(square, shape.Layers);
        return new InitPlan("espa", embeddingTables, embeddingStd, 0, valueOutput, valueOutput, square,
            Math.Sqrt(1.0 / shape.FeedForwardWidth), new Components.ResidualScaling(0, 1),
            DslmInit.LogitScale(shape.ModelWidth, embeddingStd * embeddingStd))
        {
            AttentionShapingFinalGamma = finalGamma,
            OrthogonalWeights = true,
            TokenCorrelation = 0,
        };
    }
}
