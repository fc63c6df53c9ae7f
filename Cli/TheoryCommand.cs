using System.CommandLine;
using System.Globalization;
using DeepScaleLM.Cli.Plotting;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm theory</c>: the whole-model predictions of <see cref="DepthRecursion"/> for a model given by flags, with the
/// init of the chosen scheme. Every number comes from Theory; this file only parses, checks and prints.
/// </summary>
internal static class TheoryCommand
{
    /// <summary>The validated settings of one invocation.</summary>
    private sealed record Settings(string Norm, string Init, TransformerShape Shape, int Vocabulary, bool Causal,
        int EmbeddingTables, double? BranchVariance, string TokenCorrelationSource, double TokenCorrelation);

    public static Command Create(TextWriter output)
    {
        var norm = new Option<string>("--norm")
        {
            Description = "pre (Pre-LN), post (Post-LN as in the official code: Megatron's residual-from-LN-output) or none (no LayerNorm: " +
                "with --init espa the vanilla stack of E-SPA, no skips either)",
            DefaultValueFactory = _ => "pre",
        };
        var init = new Option<string>("--init")
        {
            Description = "dslm (official DeepScaleLM), dslm-position (the data- and position-aware variant: r0 from --token-correlation, " +
                "per-position attention rescale), xavier (the paper's baseline), deepnet, simple (every std 0.02), espa (E-SPA + TAT " +
                "vanilla stack, with --norm none)",
            DefaultValueFactory = _ => "dslm",
        };
        var layers = new Option<int>("--layers") { Description = "N, transformer blocks (two residual sublayers each)", DefaultValueFactory = _ => 192 };
        var modelWidth = new Option<int>("--d-model") { Description = "d, the hidden size", DefaultValueFactory = _ => 1024 };
        var heads = new Option<int>("--heads") { Description = "attention heads; must divide --d-model", DefaultValueFactory = _ => 16 };
        var sequenceLength = new Option<int>("--seq-len") { Description = "L, tokens attended over", DefaultValueFactory = _ => 256 };
        var dropout = new Option<double>("--dropout") { Description = "p, embedding, attention and hidden dropout", DefaultValueFactory = _ => 0.1 };
        var vocabulary = new Option<int>("--vocab") { Description = "|V|; used by --token-correlation zipf", DefaultValueFactory = _ => 30522 };
        var causal = new Option<bool>("--causal") { Description = "causal attention: position t averages the t + 1 tokens up to it (a decoder)" };
        var bidirectional = new Option<bool>("--bidirectional") { Description = "bidirectional attention over all L tokens (the default)" };
        var tables = new Option<int>("--embedding-tables")
        {
            Description = "summed embedding tables: 2 for token + position (a decoder), 3 for the official BERT",
            DefaultValueFactory = _ => 2,
        };
        var beta2 = new Option<double?>("--beta2")
        {
            Description = "--init dslm or dslm-position: a fixed beta^2 (lambda^2 = 1 - beta^2), e.g. the official 0.005; default k / N with k = 2, N = sublayers",
        };
        var tokenCorrelation = new Option<string>("--token-correlation")
        {
            Description = "r0, the data's embedding token correlation before dropout (of the summed tables): official (0.221, the official " +
                "code's constant), zipf (Zipf's law over --vocab tokens) or uniform (i.i.d. uniform tokens, e.g. random bytes), both " +
                "sum p_i^2 / --embedding-tables since only the token table is shared between positions, or a number in [0, 1). " +
                "--init dslm always designs for the official 0.221; dslm-position designs for this r0",
            DefaultValueFactory = _ => "official",
        };
        var json = new Option<string?>("--json") { Description = "also write config, init and per-layer predictions as JSON to this path" };
        var plot = new Option<string?>("--plot")
        {
            Description = "draw forward variance, correlation and gradient variance per layer, one figure each: PATH gets the suffixes " +
                "-forward_variance, -correlation and -grad_variance before its extension (.png, or .svg)",
        };
        var command = new Command("theory",
            "Predict, at init, the residual stream's forward variance, token correlation and gradient variance after every block " +
            "(dslm-theory.md 2-4), with the chosen init's stds and residual scaling.")
        {
            norm, init, layers, modelWidth, heads, sequenceLength, dropout, vocabulary, causal, bidirectional, tables, beta2,
            tokenCorrelation, json, plot,
        };
        command.SetAction(parse =>
        {
            var settings = Validate(parse.GetValue(norm)!, parse.GetValue(init)!, parse.GetValue(layers), parse.GetValue(modelWidth),
                parse.GetValue(heads), parse.GetValue(sequenceLength), parse.GetValue(dropout), parse.GetValue(vocabulary),
                parse.GetValue(causal), parse.GetValue(bidirectional), parse.GetValue(tables), parse.GetValue(beta2),
                parse.GetValue(tokenCorrelation)!);
            var placement = Placement(settings.Norm);
            var plan = Plan(settings, placement);
            var prediction = DepthRecursion.Predict(settings.Shape, plan, placement, settings.TokenCorrelation);
            var blocks = prediction.Layers.ToArray();
            Print(output, settings, plan, prediction, blocks);
            var path = parse.GetValue(json);
            if (path is not null) WriteJson(path, settings, plan, prediction, blocks);
            var plotPath = parse.GetValue(plot);
            if (plotPath is not null)
                foreach (var written in Plot(plotPath, settings, blocks)) output.WriteLine($"wrote {written}");
            return 0;
        });
        return command;
    }

    private static Settings Validate(string norm, string init, int layers, int modelWidth, int heads, int sequenceLength,
        double dropout, int vocabulary, bool causal, bool bidirectional, int tables, double? beta2, string tokenCorrelation)
    {
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
        if (tables < 1) throw new ArgumentException($"--embedding-tables must be positive (got {tables})");
        if (causal && bidirectional) throw new ArgumentException("--causal and --bidirectional exclude each other");
        if (beta2 is { } b && !(b is > 0 and <= 1)) throw new ArgumentException($"--beta2 must lie in (0, 1] (got {b})");
        if (beta2 is not null && init is not ("dslm" or "dslm-position"))
            throw new ArgumentException($"--beta2 applies to --init dslm and dslm-position only (got --init {init})");
        var (source, r0) = ParseTokenCorrelation(tokenCorrelation, vocabulary, tables);

        // E-SPA is a scheme for stacks without skips or LayerNorm; the position-aware scheme relies on the LayerNorms.
        if (init == "espa" && norm != "none")
            throw new ArgumentException($"--init espa is the vanilla E-SPA stack (no skips, no LayerNorm): use it with --norm none (got --norm {norm})");
        if (init == "dslm-position" && norm == "none")
            throw new ArgumentException("--init dslm-position keeps every LayerNorm input at unit variance: use --norm pre or post");
        var shape = new TransformerShape(layers, modelWidth, heads, sequenceLength, dropout) { Causal = causal };
        return new Settings(norm, init, shape, vocabulary, causal, tables, beta2, source, r0);
    }

    private static (string Source, double Value) ParseTokenCorrelation(string text, int vocabulary, int tables)
    {
        if (text == "official") return ("official", Embedding.OfficialTokenCorrelation);
        if (text == "zipf") return ("zipf", PositionAwareInit.TokenCorrelation(Embedding.ZipfCollisionProbability(vocabulary), tables));
        if (text == "uniform") return ("uniform", PositionAwareInit.TokenCorrelation(1.0 / vocabulary, tables));
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value is >= 0 and < 1)
            return ("value", value);
        throw new ArgumentException($"--token-correlation must be official, zipf, uniform or a number in [0, 1) (got '{text}')");
    }

    private static NormPlacement Placement(string norm) => norm switch
    {
        "pre" => NormPlacement.PreLayerNorm,
        "post" => NormPlacement.PostLayerNorm,
        _ => NormPlacement.None,
    };

    private static InitPlan Plan(Settings settings, NormPlacement placement)
    {
        var residual = settings.BranchVariance is { } beta2 ? ResidualScaling.UnitVariance(beta2) : null;
        return settings.Init switch
        {
            "dslm" => residual is not null
                ? DslmInit.Plan(settings.Shape, residual, settings.EmbeddingTables)
                : DslmInit.Plan(settings.Shape, depthScaling: null, settings.EmbeddingTables),
            "dslm-position" => PositionAwareInit.Plan(settings.Shape, placement, settings.TokenCorrelation, residual, settings.EmbeddingTables),
            "xavier" => XavierInit.Plan(settings.Shape, settings.EmbeddingTables),
            "deepnet" => DeepNetInit.Plan(settings.Shape, settings.EmbeddingTables),
            "simple" => SimpleInit.Plan(settings.Shape, embeddingTables: settings.EmbeddingTables),
            "espa" => ESpaInit.Plan(settings.Shape, embeddingTables: settings.EmbeddingTables),
            _ => throw new ArgumentException($"--init {settings.Init} has no plan"),
        };
    }

    private static string Attention(Settings settings) => settings.Causal ? "causal" : "bidirectional";

    private static void Print(TextWriter output, Settings settings, InitPlan plan, DepthPrediction prediction, SublayerPrediction[] blocks)
    {
        var shape = settings.Shape;
        output.WriteLine($"theory: {settings.Init} init, {settings.Norm}-LN, {shape.Layers} layers, d {shape.ModelWidth}, {shape.Heads} heads, " +
            $"L {shape.SequenceLength}, p {shape.Dropout}, {Attention(settings)}, {settings.EmbeddingTables} embedding tables, " +
            $"r0 {settings.TokenCorrelation:G6} ({settings.TokenCorrelationSource})");
        output.WriteLine($"init: embedding std {plan.EmbeddingStd:F6}, Q/K std {plan.QueryKeyStd:F6}, FFN std {plan.FeedForwardInputStd:F6}" +
            (plan.FeedForwardOutputStd != plan.FeedForwardInputStd ? $" in / {plan.FeedForwardOutputStd:F6} out" : "") +
            $", V std {plan.ValueStd[0]:F6} (layer 0) .. {plan.ValueStd[^1]:F6} (layer {shape.Layers - 1})" +
            (SameValues(plan) ? " (= O std)" : $", O std {plan.OutputStd[0]:F6} .. {plan.OutputStd[^1]:F6}"));
        output.WriteLine($"      logit scale {plan.LogitScale:F6}, lambda {plan.Residual.Skip:F6}, beta {plan.Residual.Branch:F6} " +
            $"(lambda^2 + beta^2 = {plan.Residual.Skip * plan.Residual.Skip + plan.Residual.Branch * plan.Residual.Branch:G6}), " +
            $"predicted logit variance {prediction.LogitVariance:G6}");
        output.WriteLine("per layer: the residual stream after the block's feed-forward sublayer");
        output.WriteLine($"{"layer",5} {"forward_variance",17} {"correlation",12} {"grad_variance",14}  {"position_variance min..max",27}");
        foreach (var block in blocks)
            output.WriteLine($"{block.Layer,5} {block.Stream.Variance,17:G6} {block.Stream.Correlation,12:F6} {block.StreamGradient.Variance,14:G6}  " +
                $"{$"{block.PositionVariance.Min():G6}..{block.PositionVariance.Max():G6}",27}");
    }

    private static bool SameValues(InitPlan plan) => plan.ValueStd.SequenceEqual(plan.OutputStd);

    private static void WriteJson(string path, Settings settings, InitPlan plan, DepthPrediction prediction, SublayerPrediction[] blocks) =>
        MachineInfo.WriteJson(path, w =>
        {
            var shape = settings.Shape;
            w.WriteStartObject("config");
            w.WriteString("norm", settings.Norm);
            w.WriteString("init", settings.Init);
            w.WriteNumber("layers", shape.Layers);
            w.WriteNumber("d_model", shape.ModelWidth);
            w.WriteNumber("heads", shape.Heads);
            w.WriteNumber("seq_len", shape.SequenceLength);
            w.WriteNumber("dropout", shape.Dropout);
            w.WriteNumber("vocab", settings.Vocabulary);
            w.WriteString("attention", Attention(settings));
            w.WriteNumber("ffn_width", shape.FeedForwardWidth);
            w.WriteNumber("embedding_tables", settings.EmbeddingTables);
            if (settings.BranchVariance is { } beta2) w.WriteNumber("beta2", beta2);
            w.WriteNumber("token_correlation", settings.TokenCorrelation);
            w.WriteString("token_correlation_source", settings.TokenCorrelationSource);
            w.WriteString("layer_entries", "one per block: the residual stream after its feed-forward sublayer");
            w.WriteEndObject();

            w.WriteStartObject("init");
            w.WriteString("scheme", plan.Scheme);
            w.WriteNumber("embedding_std", plan.EmbeddingStd);
            w.WriteNumber("qk_std", plan.QueryKeyStd);
            w.WriteNumber("ffn_std", plan.FeedForwardInputStd);
            if (plan.FeedForwardOutputStd != plan.FeedForwardInputStd) w.WriteNumber("ffn_out_std", plan.FeedForwardOutputStd);
            WriteArray(w, "vo_std", plan.ValueStd);
            // vo_std is the V std; the attention output's std differs only in the Xavier baseline, and is then given too.
            if (!SameValues(plan)) WriteArray(w, "o_std", plan.OutputStd);
            w.WriteNumber("logit_scale", plan.LogitScale);
            w.WriteNumber("lambda", plan.Residual.Skip);
            w.WriteNumber("beta", plan.Residual.Branch);
            if (plan.TokenCorrelation is { } designed) w.WriteNumber("token_correlation", designed);
            if (plan.AttentionRescale is { } rescale)
            {
                w.WriteStartArray("attention_rescale");
                foreach (var layer in rescale) WriteArray(w, null, layer);
                w.WriteEndArray();
            }
            if (plan.AttentionShapingFinalGamma is { } gamma) w.WriteNumber("espa_final_gamma", gamma);
            if (plan.FeedForwardNegativeSlope is { } slope) w.WriteNumber("ffn_negative_slope", slope);
            if (plan.OrthogonalWeights) w.WriteBoolean("orthogonal", true);
            w.WriteEndObject();

            w.WriteNumber("logit_variance", prediction.LogitVariance);
            w.WriteStartArray("layers");
            foreach (var block in blocks)
            {
                w.WriteStartObject();
                w.WriteNumber("layer", block.Layer);
                w.WriteNumber("forward_variance", block.Stream.Variance);
                w.WriteNumber("correlation", block.Stream.Correlation);
                w.WriteNumber("grad_variance", block.StreamGradient.Variance);
                w.WriteNumber("position_variance_min", block.PositionVariance.Min());
                w.WriteNumber("position_variance_max", block.PositionVariance.Max());
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });

    private static void WriteArray(System.Text.Json.Utf8JsonWriter w, string? name, IReadOnlyList<double> values)
    {
        if (name is null) w.WriteStartArray();
        else w.WriteStartArray(name);
        foreach (double value in values) w.WriteNumberValue(value);
        w.WriteEndArray();
    }

    /// <summary>
    /// One figure per quantity (forward variance, correlation, gradient variance against the layer), each at PATH with
    /// the quantity's suffix; a logarithmic y axis where a quantity spans more than a factor 20. Returns the paths written.
    /// </summary>
    private static IEnumerable<string> Plot(string path, Settings settings, SublayerPrediction[] blocks)
    {
        string extension = Path.GetExtension(path) is { Length: > 0 } given ? given : ".png";
        string stem = Path.Combine(Path.GetDirectoryName(path) ?? "", Path.GetFileNameWithoutExtension(path));
        double[] layers = blocks.Select(block => (double)block.Layer).ToArray();
        var shape = settings.Shape;
        string subject = $"{settings.Init}, {settings.Norm}-LN, {Attention(settings)}, {shape.Layers} layers, d {shape.ModelWidth}, L {shape.SequenceLength}";
        var quantities = new (string Name, string Label, double[] Values)[]
        {
            ("forward_variance", "residual stream variance", blocks.Select(block => block.Stream.Variance).ToArray()),
            ("correlation", "token correlation r", blocks.Select(block => block.Stream.Correlation).ToArray()),
            ("grad_variance", "gradient variance", blocks.Select(block => block.StreamGradient.Variance).ToArray()),
        };
        for (int i = 0; i < quantities.Length; i++)
        {
            var (name, label, values) = quantities[i];
            bool logY = values.Min() > 0 && values.Max() > 20 * values.Min();
            // Causal attention gives every position its own variance: the band shows their range.
            bool spread = name == "forward_variance" && blocks.Any(block => block.PositionVariance.Min() != block.PositionVariance.Max());
            var chart = new LineChart($"{label}: theory ({subject})", "layer", label, logY).Add(new ChartSeries(
                spread ? "theory (band: min..max over positions)" : "theory", layers, values, Dashed: true, ColorIndex: i,
                spread ? blocks.Select(block => block.PositionVariance.Min()).ToArray() : null,
                spread ? blocks.Select(block => block.PositionVariance.Max()).ToArray() : null));
            string file = $"{stem}-{name}{extension}";
            chart.Save(file);
            yield return file;
        }
    }
}
