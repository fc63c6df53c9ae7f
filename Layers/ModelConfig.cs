using System.Text.Json;
using System.Text.Json.Serialization;
using DeepScaleLM.Native;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Layers;

/// <summary>What a model predicts.</summary>
public enum ModelKind
{
    /// <summary>Causal language model: causal self-attention, targets are the next tokens.</summary>
    Decoder,
    /// <summary>Masked language model: bidirectional self-attention, targets at masked positions, -100 elsewhere.</summary>
    Encoder,
    /// <summary>Sequence to sequence: an encoder over the source tokens, a causal decoder with cross-attention to it.</summary>
    EncoderDecoder,
}

/// <summary>Where a block normalises (docs/layers.md, "Blocks").</summary>
public enum NormPlacement
{
    /// <summary>out = lam x + beta f(LN(x)).</summary>
    Pre,
    /// <summary>out = LN(lam x + beta f(x)).</summary>
    Post,
    /// <summary>Vanilla (E-SPA): out = f(x), no skip and no norm.</summary>
    None,
}

/// <summary>The feed-forward nonlinearity.</summary>
public enum FeedForwardActivation
{
    /// <summary>max(x, 0), as in the official DSLM code.</summary>
    Relu,
    /// <summary>The exact (erf) GeLU.</summary>
    Gelu,
    /// <summary>TAT's scaled leaky ReLU, its slope solved by Theory for the model's chain of activations.</summary>
    LeakyRelu,
}

/// <summary>The initialisation scheme (all formulas from Theory/Schemes).</summary>
public enum InitScheme
{
    /// <summary>DeepScaleLM (dslm-theory.md 4.1): unit-variance blocks, lam^2 + beta^2 = 1, logit pre-scale.</summary>
    Dslm,
    /// <summary>The Xavier baseline of dslm-theory.md 3, plain residuals.</summary>
    Xavier,
    /// <summary>DeepNet for one-stack models: lam = (2N)^(1/4) on the skip, gain (8N)^(-1/4).</summary>
    DeepNet,
    /// <summary>Every weight N(0, 0.02^2), plain residuals.</summary>
    Simple,
    /// <summary>E-SPA + Value-SkipInit + TAT + orthogonal weights, for vanilla (norm none) models (spa-theory.md).</summary>
    Espa,
    /// <summary>
    /// The data- and position-aware DSLM variant (Theory's PositionAwareInit, open-problems.md 1-3): r0 from the data's
    /// unigram statistics (<see cref="ModelConfig.TokenCorrelation"/>), unit-gain V and attention output, and a
    /// per-layer, per-position rescale of the attention output that keeps every attention sublayer, at every
    /// position, at unit variance. Pre-LN or Post-LN, one-stack models.
    /// </summary>
    DslmPosition,
}

/// <summary>What N counts in DSLM's beta^2 = k / N^exponent (dslm-theory.md 4.2).</summary>
public enum DepthCount
{
    /// <summary>N = the number of blocks.</summary>
    Layers,
    /// <summary>N = the number of residual sublayers, two per block (the default).</summary>
    Sublayers,
}

/// <summary>
/// The architecture, init and compute settings of a <see cref="TransformerModel"/>; it round-trips as JSON with
/// snake_case names (<see cref="ToJson"/>, <see cref="FromJson"/>) and is the checkpoint's config.json.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>Decoder, encoder or encoder-decoder.</summary>
    public ModelKind Kind { get; init; } = ModelKind.Decoder;
    /// <summary>Token ids lie in [0, Vocabulary).</summary>
    public int Vocabulary { get; init; } = 256;
    /// <summary>Depth of the decoder stack (or of the encoder of an encoder-only model).</summary>
    public int Layers { get; init; } = 4;
    /// <summary>Depth of the encoder of an encoder-decoder model; null means <see cref="Layers"/>.</summary>
    public int? EncoderLayers { get; init; }
    /// <summary>d, the width of the residual stream.</summary>
    public int ModelWidth { get; init; } = 64;
    /// <summary>Attention heads; they must divide <see cref="ModelWidth"/>.</summary>
    public int Heads { get; init; } = 4;
    /// <summary>The feed-forward hidden width; null means 4 d.</summary>
    public int? FeedForwardWidth { get; init; }
    /// <summary>The number of learned positions (the longest sequence the model takes).</summary>
    public int SequenceLength { get; init; } = 64;
    /// <summary>Where blocks normalise.</summary>
    public NormPlacement Norm { get; init; } = NormPlacement.Pre;
    /// <summary>The feed-forward nonlinearity; null: TAT's leaky_relu for the espa init (the activation E-SPA's signal
    /// propagation assumes, spa-theory.md 3), relu otherwise (see <see cref="FeedForwardFunction"/>).</summary>
    public FeedForwardActivation? Activation { get; init; }
    /// <summary>Dropout probability on the embedding and on every sublayer's output, in [0, 1).</summary>
    public float Dropout { get; init; }
    /// <summary>Whether the output head reuses the token embedding (true) or has its own lm_head.weight.</summary>
    public bool TiedHead { get; init; } = true;
    /// <summary>Whether each stack ends with a LayerNorm; null means true for Pre-LN, false otherwise.</summary>
    public bool? FinalNorm { get; init; }
    /// <summary>The initialisation scheme.</summary>
    public InitScheme Init { get; init; } = InitScheme.Dslm;
    /// <summary>
    /// r0 the <see cref="InitScheme.DslmPosition"/> init designs for: the embedding token correlation of the data,
    /// sum_i p_i^2 / 2 over its unigram distribution (<see cref="TokenCorrelationOf"/>); null means i.i.d. uniform
    /// tokens, 1 / (2 vocabulary), for a model built without data (the trainer fills it in from the training tokens).
    /// Ignored by the other schemes.
    /// </summary>
    public double? TokenCorrelation { get; init; }

    /// <summary>How many embedding tables the models sum: the token table and the learned position table.</summary>
    public const int EmbeddingTables = 2;

    /// <summary>
    /// r0 of this library's embeddings for data whose unigram collision probability is sum_i p_i^2: only the token
    /// table is shared between two positions, so r0 = sum_i p_i^2 / <see cref="EmbeddingTables"/> (PositionAwareInit).
    /// </summary>
    /// <param name="collisionProbability">sum_i p_i^2 over the token distribution, in [0, 1].</param>
    public static double TokenCorrelationOf(double collisionProbability) =>
        PositionAwareInit.TokenCorrelation(collisionProbability, EmbeddingTables);
    /// <summary>k of DSLM's beta^2 = k / N^exponent.</summary>
    public double ResidualK { get; init; } = 2;
    /// <summary>The exponent of DSLM's beta^2 = k / N^exponent.</summary>
    public double ResidualExponent { get; init; } = 1;
    /// <summary>What N counts in DSLM's beta^2 = k / N^exponent.</summary>
    public DepthCount DepthCounts { get; init; } = DepthCount.Sublayers;
    /// <summary>0 or 1: keep every activation; k &gt; 1: keep the input of every k-th block and recompute in backward.</summary>
    public int RecomputeEvery { get; init; }
    /// <summary>The format of matmul inputs and stored activations (master weights stay fp32).</summary>
    public ComputePrecision Precision { get; init; } = ComputePrecision.Fp32;
    /// <summary>Seeds the initialisation.</summary>
    public int Seed { get; init; } = 1234;

    /// <summary>The encoder depth in use: <see cref="EncoderLayers"/> or <see cref="Layers"/>.</summary>
    [JsonIgnore] public int EncoderDepth => EncoderLayers ?? Layers;
    /// <summary>The feed-forward width in use.</summary>
    [JsonIgnore] public int HiddenWidth => FeedForwardWidth ?? 4 * ModelWidth;
    /// <summary>Whether the stacks end with a LayerNorm.</summary>
    [JsonIgnore] public bool HasFinalNorm => FinalNorm ?? Norm == NormPlacement.Pre;
    /// <summary>The activation in use: <see cref="Activation"/>, or its default for the init.</summary>
    [JsonIgnore] public FeedForwardActivation FeedForwardFunction =>
        Activation ?? (Init == InitScheme.Espa ? FeedForwardActivation.LeakyRelu : FeedForwardActivation.Relu);
    /// <summary>Blocks kept per recomputed segment (1 when nothing is recomputed).</summary>
    [JsonIgnore] public int Segment => Math.Max(RecomputeEvery, 1);

    /// <summary>Throws an <see cref="ArgumentException"/> naming the first field that cannot work.</summary>
    /// <exception cref="ArgumentException">A field is out of range or the combination is not supported.</exception>
    public void Validate()
    {
        Require(Enum.IsDefined(Kind), "kind", $"is {(int)Kind}, not a model kind");
        Require(Vocabulary >= 2, "vocabulary", $"must be at least 2 (got {Vocabulary})");
        Require(Layers >= 1, "layers", $"must be at least 1 (got {Layers})");
        Require(EncoderLayers is null or >= 1, "encoder_layers", $"must be at least 1 (got {EncoderLayers})");
        Require(EncoderLayers is null || Kind == ModelKind.EncoderDecoder, "encoder_layers", "is only used by an encoder_decoder model");
        Require(ModelWidth >= 1, "model_width", $"must be at least 1 (got {ModelWidth})");
        Require(Heads >= 1 && ModelWidth % Heads == 0, "heads", $"({Heads}) must be a positive divisor of model_width ({ModelWidth})");
        Require(HiddenWidth >= 1, "feed_forward_width", $"must be at least 1 (got {HiddenWidth})");
        Require(SequenceLength >= 1, "sequence_length", $"must be at least 1 (got {SequenceLength})");
        Require(Enum.IsDefined(Norm), "norm", $"is {(int)Norm}, not a norm placement");
        Require(Enum.IsDefined(FeedForwardFunction), "activation", $"is {(int)FeedForwardFunction}, not an activation");
        Require(Dropout >= 0 && Dropout < 1, "dropout", $"must lie in [0, 1) (got {Dropout})");
        Require(Enum.IsDefined(Init), "init", $"is {(int)Init}, not an init scheme");
        Require(double.IsFinite(ResidualK) && ResidualK > 0, "residual_k", $"must be positive (got {ResidualK})");
        Require(double.IsFinite(ResidualExponent) && ResidualExponent >= 0, "residual_exponent", $"must be non-negative (got {ResidualExponent})");
        Require(Enum.IsDefined(DepthCounts), "depth_counts", $"is {(int)DepthCounts}, not a depth count");
        Require(RecomputeEvery >= 0, "recompute_every", $"must not be negative (got {RecomputeEvery})");
        Require(Enum.IsDefined(Precision), "precision", $"is {(int)Precision}, not a compute precision");
        Require((Norm == NormPlacement.None) == (Init == InitScheme.Espa), Norm == NormPlacement.None ? "init" : "norm",
            "must be espa exactly when norm is none: a vanilla block needs E-SPA's bias, rescale and orthogonal weights, and E-SPA is defined for vanilla blocks only");
        // Without TAT's gain sqrt(2 / (1 + a^2)) a vanilla block loses half the signal's second moment to plain ReLU per
        // block (E[relu(x)^2] = 1/2), so the default ReLU would silently collapse an E-SPA stack. E-SPA's kernel control
        // assumes the scaled leaky ReLU (spa-theory.md 3); a smooth GeLU stays allowed as a deliberate choice.
        Require(Init != InitScheme.Espa || FeedForwardFunction != FeedForwardActivation.Relu, "activation",
            "must not be relu with the espa init: unscaled ReLU halves the signal in every vanilla block; use leaky_relu (TAT's scaled leaky ReLU, spa-theory.md 3)");
        Require(TokenCorrelation is null || (TokenCorrelation >= 0 && TokenCorrelation < 1), "token_correlation",
            $"must lie in [0, 1) (got {TokenCorrelation})");
        Require(Init != InitScheme.DslmPosition || Kind != ModelKind.EncoderDecoder, "init",
            "dslm_position is given for one-stack models: Theory has no per-position plan for cross-attention");
        Require(Init != InitScheme.DeepNet || Kind != ModelKind.EncoderDecoder, "init",
            "deepnet is given for one-stack models (alpha = (2N)^(1/4), beta = (8N)^(-1/4)); its encoder-decoder constants are not in Theory");
        if (Init is InitScheme.Dslm or InitScheme.DslmPosition)
            foreach (int depth in Kind == ModelKind.EncoderDecoder ? [Layers, EncoderDepth] : new[] { Layers })
            {
                double branchVariance = ResidualK / Math.Pow(DepthCounts == DepthCount.Layers ? depth : 2.0 * depth, ResidualExponent);
                Require(branchVariance <= 1, "residual_k", $"gives beta^2 = {branchVariance:G4} > 1 for a stack of {depth} layers (lam^2 = 1 - beta^2 must be a variance)");
            }
    }

    private static void Require(bool condition, string field, string problem)
    {
        if (!condition) throw new ArgumentException($"model config: {field} {problem}", field);
    }

    /// <summary>This config as JSON (snake_case).</summary>
    public string ToJson() => JsonSerializer.Serialize(this, ModelConfigJsonContext.Snake.ModelConfig);

    /// <summary>A config from JSON written by <see cref="ToJson"/> (missing fields take their defaults), validated.</summary>
    /// <exception cref="ArgumentException">The JSON is malformed, names an unknown field, or the config is invalid.</exception>
    public static ModelConfig FromJson(string json)
    {
        var config = ConfigJson.Read(json, "model config", new ModelConfig().ToJson(), ModelConfigJsonContext.Snake.ModelConfig);
        config.Validate();
        return config;
    }
}

/// <summary>Source-generated JSON for <see cref="ModelConfig"/> (trimming- and AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, UseStringEnumConverter = true,
    WriteIndented = true, UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ModelConfig))]
internal sealed partial class ModelConfigJsonContext : JsonSerializerContext
{
    /// <summary>The context with snake_case enum values as well.</summary>
    public static ModelConfigJsonContext Snake { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter<ModelKind>(JsonNamingPolicy.SnakeCaseLower), new JsonStringEnumConverter<NormPlacement>(JsonNamingPolicy.SnakeCaseLower),
            new JsonStringEnumConverter<FeedForwardActivation>(JsonNamingPolicy.SnakeCaseLower), new JsonStringEnumConverter<InitScheme>(JsonNamingPolicy.SnakeCaseLower),
            new JsonStringEnumConverter<DepthCount>(JsonNamingPolicy.SnakeCaseLower), new JsonStringEnumConverter<ComputePrecision>(JsonNamingPolicy.SnakeCaseLower) },
        WriteIndented = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    });
}
