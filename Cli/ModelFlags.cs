using System.CommandLine;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Cli;

/// <summary>The validated model of one <c>dslm theory</c> or <c>dslm simulate</c> invocation.</summary>
/// <param name="Norm">pre, post or none.</param>
/// <param name="Init">dslm, dslm-position, xavier, deepnet, simple or espa.</param>
/// <param name="Shape">The theory's shape (layers, d, heads, L, p, causal).</param>
/// <param name="Vocabulary">|V|.</param>
/// <param name="Causal">Causal (decoder) rather than bidirectional (encoder) attention.</param>
/// <param name="EmbeddingTables">How many embedding tables are summed.</param>
/// <param name="BranchVariance">A fixed beta^2, or null for DSLM's k / N.</param>
/// <param name="TokenCorrelationSource">Where r0 comes from (official, zipf, uniform, gaussian, value).</param>
/// <param name="TokenCorrelation">r0, the data's embedding token correlation before dropout.</param>
internal sealed record ModelSettings(string Norm, string Init, TransformerShape Shape, int Vocabulary, bool Causal,
    int EmbeddingTables, double? BranchVariance, string TokenCorrelationSource, double TokenCorrelation)
{
    /// <summary>"causal" or "bidirectional".</summary>
    public string Attention => Causal ? "causal" : "bidirectional";

    /// <summary>A figure's subject line: scheme, norm, attention, depth, width and length.</summary>
    public string Subject => $"{Init}, {Norm}-LN, {Attention}, {Shape.Layers} layers, d {Shape.ModelWidth}, L {Shape.SequenceLength}";

    /// <summary>Theory's norm placement of <see cref="Norm"/>.</summary>
    public NormPlacement Placement => Norm switch
    {
        "pre" => NormPlacement.PreLayerNorm,
        "post" => NormPlacement.PostLayerNorm,
        _ => NormPlacement.None,
    };

    /// <summary>The chosen scheme's init plan (Theory/Schemes) for this model; the position-aware scheme designs for r0.</summary>
    public InitPlan Plan()
    {
        var residual = BranchVariance is { } beta2 ? ResidualScaling.UnitVariance(beta2) : null;
        return Init switch
        {
            "dslm" => residual is not null
                ? DslmInit.Plan(Shape, residual, EmbeddingTables)
                : DslmInit.Plan(Shape, depthScaling: null, EmbeddingTables),
            "dslm-position" => PositionAwareInit.Plan(Shape, Placement, TokenCorrelation, residual, EmbeddingTables),
            "xavier" => XavierInit.Plan(Shape, EmbeddingTables),
            "deepnet" => DeepNetInit.Plan(Shape, EmbeddingTables),
            "simple" => SimpleInit.Plan(Shape, embeddingTables: EmbeddingTables),
            "espa" => ESpaInit.Plan(Shape, embeddingTables: EmbeddingTables),
            _ => throw new ArgumentException($"--init {Init} has no plan"),
        };
    }
}

/// <summary>
/// The model flags <c>dslm theory</c> and <c>dslm simulate</c> share (--norm, --init, --layers, --d-model, --heads,
/// --seq-len, --dropout, --vocab, --causal/--bidirectional, --beta2), with per-command defaults, and their one validation.
/// </summary>
internal sealed class ModelFlags
{
    private readonly Option<string> _norm, _init;
    private readonly Option<int> _layers, _modelWidth, _heads, _sequenceLength, _vocabulary;
    private readonly Option<double> _dropout;
    private readonly Option<bool> _causal, _bidirectional;
    private readonly Option<double?> _beta2;

    /// <summary>The flags with the command's defaults.</summary>
    public ModelFlags(int layers, int modelWidth, int heads, int sequenceLength, double dropout, int vocabulary)
    {
        _norm = new Option<string>("--norm")
        {
            Description = "pre (Pre-LN), post (Post-LN as in the official code: Megatron's residual-from-LN-output) or none (no LayerNorm: " +
                "with --init espa the vanilla stack of E-SPA, no skips either)",
            DefaultValueFactory = _ => "pre",
        };
        _init = new Option<string>("--init")
        {
            Description = "dslm (official DeepScaleLM), dslm-position (the data- and position-aware variant: r0 from the data, " +
                "per-position attention rescale), xavier (the paper's baseline), deepnet, simple (every std 0.02), espa (E-SPA + TAT " +
                "vanilla stack, with --norm none)",
            DefaultValueFactory = _ => "dslm",
        };
        _layers = new Option<int>("--layers") { Description = "N, transformer blocks (two residual sublayers each)", DefaultValueFactory = _ => layers };
        _modelWidth = new Option<int>("--d-model") { Description = "d, the hidden size", DefaultValueFactory = _ => modelWidth };
        _heads = new Option<int>("--heads") { Description = "attention heads; must divide --d-model", DefaultValueFactory = _ => heads };
        _sequenceLength = new Option<int>("--seq-len") { Description = "L, tokens attended over", DefaultValueFactory = _ => sequenceLength };
        _dropout = new Option<double>("--dropout") { Description = "p, embedding, attention and hidden dropout", DefaultValueFactory = _ => dropout };
        _vocabulary = new Option<int>("--vocab") { Description = "|V|, the token ids", DefaultValueFactory = _ => vocabulary };
        _causal = new Option<bool>("--causal") { Description = "causal attention: position t averages the t + 1 tokens up to it (a decoder)" };
        _bidirectional = new Option<bool>("--bidirectional") { Description = "bidirectional attention over all L tokens (the default)" };
        _beta2 = new Option<double?>("--beta2")
        {
            Description = "--init dslm or dslm-position: a fixed beta^2 (lambda^2 = 1 - beta^2), e.g. the official 0.005; default k / N with k = 2, N = sublayers",
        };
    }

    /// <summary>Every flag, to add to a command.</summary>
    public IEnumerable<Option> Options => [_norm, _init, _layers, _modelWidth, _heads, _sequenceLength, _dropout, _vocabulary, _causal, _bidirectional, _beta2];

    /// <summary>
    /// The validated model, with <paramref name="embeddingTables"/> tables and the r0 that <paramref name="tokenCorrelation"/>
    /// gives for its vocabulary and tables.
    /// </summary>
    /// <exception cref="ArgumentException">A flag is out of range or the combination does not exist.</exception>
    public ModelSettings Read(ParseResult parse, int embeddingTables, Func<int, int, (string Source, double Value)> tokenCorrelation)
    {
        string norm = parse.GetValue(_norm)!, init = parse.GetValue(_init)!;
        int layers = parse.GetValue(_layers), modelWidth = parse.GetValue(_modelWidth), heads = parse.GetValue(_heads);
        int sequenceLength = parse.GetValue(_sequenceLength), vocabulary = parse.GetValue(_vocabulary);
        double dropout = parse.GetValue(_dropout);
        bool causal = parse.GetValue(_causal), bidirectional = parse.GetValue(_bidirectional);
        double? beta2 = parse.GetValue(_beta2);
        if (norm is not ("pre" or "post" or "none")) throw new ArgumentException($"--norm must be pre, post or none (got '{norm}')");
        if (init is not ("dslm" or "dslm-position" or "xavier" or "deepnet" or "simple" or "espa"))
            throw new ArgumentException($"--init must be dslm, dslm-position, xavier, deepnet, simple or espa (got '{init}')");
        if (layers < 1) throw new ArgumentException($"--layers must be positive (got {layers})");
        if (modelWidth < 1) throw new ArgumentException($"--d-model must be positive (got {modelWidth})");
        if (heads < 1 || modelWidth % heads != 0)
            throw new ArgumentException($"--heads ({heads}) must be positive and divide --d-model ({modelWidth})");
        if (sequenceLength < 1) throw new ArgumentException($"--seq-len must be positive (got {sequenceLength})");
        if (!(dropout is >= 0 and < 1)) throw new ArgumentException($"--dropout must lie in [0, 1) (got {dropout})");
        if (vocabulary < 1) throw new ArgumentException($"--vocab must be positive (got {vocabulary})");
        if (embeddingTables < 1) throw new ArgumentException($"--embedding-tables must be positive (got {embeddingTables})");
        if (causal && bidirectional) throw new ArgumentException("--causal and --bidirectional exclude each other");
        if (beta2 is { } b && !(b is > 0 and <= 1)) throw new ArgumentException($"--beta2 must lie in (0, 1] (got {b})");
        if (beta2 is not null && init is not ("dslm" or "dslm-position"))
            throw new ArgumentException($"--beta2 applies to --init dslm and dslm-position only (got --init {init})");
        var (source, r0) = tokenCorrelation(vocabulary, embeddingTables);

        // E-SPA is a scheme for stacks without skips or LayerNorm; the position-aware scheme relies on the LayerNorms.
        if (init == "espa" && norm != "none")
            throw new ArgumentException($"--init espa is the vanilla E-SPA stack (no skips, no LayerNorm): use it with --norm none (got --norm {norm})");
        if (init == "dslm-position" && norm == "none")
            throw new ArgumentException("--init dslm-position keeps every LayerNorm input at unit variance: use --norm pre or post");
        var shape = new TransformerShape(layers, modelWidth, heads, sequenceLength, dropout) { Causal = causal };
        return new ModelSettings(norm, init, shape, vocabulary, causal, embeddingTables, beta2, source, r0);
    }

    /// <summary>r0 of i.i.d. tokens from a unigram distribution with collision probability sum_i p_i^2, over summed tables.</summary>
    public static (string Source, double Value) UnigramCorrelation(string source, int vocabulary, int tables) => source switch
    {
        "zipf" => ("zipf", PositionAwareInit.TokenCorrelation(Embedding.ZipfCollisionProbability(vocabulary), tables)),
        "uniform" => ("uniform", PositionAwareInit.TokenCorrelation(1.0 / vocabulary, tables)),
        _ => throw new ArgumentException($"no unigram distribution named '{source}' (zipf or uniform)"),
    };
}
