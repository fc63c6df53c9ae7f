using DeepScaleLM.Native;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Layers;

/// <summary>
/// The init and residual scaling of one stack, resolved from Theory's schemes (the one source of truth) for the
/// config: stds per weight kind (0 = zeros; orthogonal = SUO instead of normal), lam and beta, the Value-SkipInit
/// mix, E-SPA's bias and rescale per layer, the position-aware scheme's attention rescale [layer][position] (null
/// for none), and the logit pre-scale of the head.
/// </summary>
internal sealed record StackInit(
    double EmbeddingStd, double QueryStd, double KeyStd, IReadOnlyList<double> ValueStd, IReadOnlyList<double> OutputStd,
    double FeedForwardInputStd, double FeedForwardOutputStd, bool Orthogonal, ResidualScaling Residual,
    double CrossValueOutputStd, ResidualScaling CrossResidual, double LogitScale, double FinalCorrelation,
    IReadOnlyList<IReadOnlyList<double>>? AttentionRescale = null)
{
    /// <summary>The init of a stack of <paramref name="layers"/> blocks.</summary>
    /// <param name="config">The model.</param>
    /// <param name="layers">This stack's depth.</param>
    /// <param name="tokens">The sequence length the model runs at.</param>
    /// <param name="causal">Whether the stack's self-attention is causal (the position-aware rescale depends on it).</param>
    /// <param name="contextCorrelation">r of the encoder output the cross-attention reads (decoder of an
    /// encoder-decoder model), for DSLM's V/O std of the cross-attention.</param>
    public static StackInit For(ModelConfig config, int layers, int tokens, bool causal, double contextCorrelation)
    {
        var (shape, depthScaling) = TheoryShape(config, layers, tokens, causal);
        double p = config.Dropout;
        if (config.Init == InitScheme.Espa)
        {
            // Zero queries make softmax(QK^T + B) = softmax(B) at init; keys N(0, 1/d); V, output and feed-forward
            // SUO-orthogonal (spa-theory.md 2.1, 4); unit-variance embeddings as in DSLM. Unit-variance logits: the head
            // reads the last stream, whose variance the theory predicts (ESpaInit.UnitLogitScale). The decoder of an
            // encoder-decoder model has cross-attention the recursion does not model, so it keeps DSLM's pre-scale.
            double embedding = DslmInit.EmbeddingStd(p, ModelConfig.EmbeddingTables);
            double logitScale = config.Kind == ModelKind.EncoderDecoder ? DslmInit.LogitScale(config.ModelWidth, embedding * embedding)
                : ESpaInit.UnitLogitScale(shape, ModelConfig.EmbeddingTables, embedding, ActivationMoments(config),
                    ModelConfig.TokenCorrelationOf(1.0 / config.Vocabulary));
            var ones = Enumerable.Repeat(1.0, layers).ToArray();
            return new StackInit(embedding, 0, DslmInit.QueryKeyStd(config.ModelWidth), ones, ones, 1, 1, Orthogonal: true,
                ResidualScaling.Plain, 1, depthScaling.For(layers), logitScale, 1);
        }
        var plan = TheoryPlan(config, shape, depthScaling);
        double finalCorrelation = 1, crossValueOutput = plan.ValueStd[^1];
        if (config.Init == InitScheme.Dslm)
        {
            finalCorrelation = DslmInit.ValueOutputRecursion(config.ModelWidth, p, layers, plan.Residual).FinalCorrelation;
            crossValueOutput = DslmInit.ValueOutputStd(config.ModelWidth, p, contextCorrelation);
        }
        return new StackInit(plan.EmbeddingStd, plan.QueryKeyStd, plan.QueryKeyStd, plan.ValueStd, plan.OutputStd,
            plan.FeedForwardInputStd, plan.FeedForwardOutputStd, Orthogonal: false, plan.Residual, crossValueOutput, plan.Residual,
            plan.LogitScale, finalCorrelation, plan.AttentionRescale);
    }

    /// <summary>Theory's plan (stds, lam/beta, logit scale) of a normed stack of <paramref name="shape"/> under the config's scheme.</summary>
    /// <exception cref="ArgumentException">The scheme is E-SPA, which has no plan of this form.</exception>
    public static InitPlan TheoryPlan(ModelConfig config, TransformerShape shape, ResidualDepthScaling depthScaling) => config.Init switch
    {
        InitScheme.Dslm => DslmInit.Plan(shape, depthScaling),
        InitScheme.Xavier => XavierInit.Plan(shape),
        InitScheme.DeepNet => DeepNetInit.Plan(shape),
        InitScheme.Simple => SimpleInit.Plan(shape),
        // The plan's rescale multiplies query position t's attention output before the output projection, which is
        // where AttentionOptions.Rescale acts (output[t] = rescale[t] (P V)[t]); r0 as ModelConfig.TokenCorrelation says.
        InitScheme.DslmPosition => PositionAwareInit.Plan(shape, config.Norm == NormPlacement.Post ? Theory.NormPlacement.PostLayerNorm
            : Theory.NormPlacement.PreLayerNorm, config.TokenCorrelation ?? ModelConfig.TokenCorrelationOf(1.0 / config.Vocabulary),
            depthScaling.For(shape.Layers)),
        _ => throw new ArgumentException($"the {config.Init} init has no normed-stack plan", nameof(config)),
    };

    /// <summary>
    /// The theory's shape and depth scaling of a stack of <paramref name="layers"/> blocks at <paramref name="tokens"/>
    /// tokens, causal or not; no dropout on the attention probabilities, which the op contract does not have.
    /// </summary>
    public static (TransformerShape Shape, ResidualDepthScaling DepthScaling) TheoryShape(ModelConfig config, int layers, int tokens, bool causal) =>
        (new TransformerShape(layers, config.ModelWidth, config.Heads, tokens, config.Dropout)
            { FeedForwardWidth = config.HiddenWidth, Causal = causal, AttentionDropout = 0 },
         new ResidualDepthScaling(config.ResidualK, config.ResidualExponent, config.DepthCounts == DepthCount.Layers ? DepthUnit.Blocks : DepthUnit.Sublayers));

    /// <summary>
    /// The feed-forward activation; LeakyRelu takes TAT's slope for the model's chain of activations (spa-theory.md 3:
    /// C_f(0) = 0.9). A chain too short to reach 0.9 even with ReLU (12 or fewer) gets slope 0, the closest to it.
    /// </summary>
    /// <param name="config">The model.</param>
    public static ActivationFunction Activation(ModelConfig config) => config.FeedForwardFunction switch
    {
        FeedForwardActivation.Relu => ActivationFunction.Relu,
        FeedForwardActivation.Gelu => ActivationFunction.GeluErf,
        _ => ActivationFunction.ScaledLeakyRelu((float)TatSlope(config)),
    };

    /// <summary>Theory's moments of <see cref="Activation"/>.</summary>
    private static IMomentMap ActivationMoments(ModelConfig config) => config.FeedForwardFunction switch
    {
        FeedForwardActivation.Relu => new Relu(),
        FeedForwardActivation.Gelu => new Gelu(),
        _ => new ScaledLeakyRelu((float)TatSlope(config)),
    };

    private static double TatSlope(ModelConfig config)
    {
        int chain = config.Layers + (config.Kind == ModelKind.EncoderDecoder ? config.EncoderDepth : 0);
        return TatLeakyRelu.ChainZeroCorrelation(chain, 0) < TatLeakyRelu.DefaultTarget ? 0 : TatLeakyRelu.Solve(chain).NegativeSlope;
    }
}
