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
    public static Command Create(TextWriter output)
    {
        var model = new ModelFlags(layers: 192, modelWidth: 1024, heads: 16, sequenceLength: 256, dropout: 0.1, vocabulary: 30522);
        var tables = new Option<int>("--embedding-tables")
        {
            Description = "summed embedding tables: 2 for token + position (a decoder), 3 for the official BERT",
            DefaultValueFactory = _ => 2,
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
            "(dslm-theory.md 2-4), with the chosen init's stds and residual scaling.");
        foreach (var option in model.Options.Concat([tables, tokenCorrelation, json, plot])) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var settings = model.Read(parse, parse.GetValue(tables), (vocabulary, count) => ParseTokenCorrelation(parse.GetValue(tokenCorrelation)!, vocabulary, count));
            var plan = settings.Plan();
            var prediction = DepthRecursion.Predict(settings.Shape, plan, settings.Placement, settings.TokenCorrelation);
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

    private static (string Source, double Value) ParseTokenCorrelation(string text, int vocabulary, int tables)
    {
        if (text == "official") return ("official", Embedding.OfficialTokenCorrelation);
        if (text is "zipf" or "uniform") return ModelFlags.UnigramCorrelation(text, vocabulary, tables);
        if (double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value) && value is >= 0 and < 1)
            return ("value", value);
        throw new ArgumentException($"--token-correlation must be official, zipf, uniform or a number in [0, 1) (got '{text}')");
    }

    private static void Print(TextWriter output, ModelSettings settings, InitPlan plan, DepthPrediction prediction, SublayerPrediction[] blocks)
    {
        var shape = settings.Shape;
        output.WriteLine($"theory: {settings.Init} init, {settings.Norm}-LN, {shape.Layers} layers, d {shape.ModelWidth}, {shape.Heads} heads, " +
            $"L {shape.SequenceLength}, p {shape.Dropout}, {settings.Attention}, {settings.EmbeddingTables} embedding tables, " +
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

    /// <summary>The "config" object: the model's flags and r0 (shared with <c>dslm simulate</c>).</summary>
    internal static void WriteConfig(System.Text.Json.Utf8JsonWriter w, ModelSettings settings, string layerEntries)
    {
        w.WriteStartObject("config");
        var shape = settings.Shape;
        w.WriteString("norm", settings.Norm);
        w.WriteString("init", settings.Init);
        w.WriteNumber("layers", shape.Layers);
        w.WriteNumber("d_model", shape.ModelWidth);
        w.WriteNumber("heads", shape.Heads);
        w.WriteNumber("seq_len", shape.SequenceLength);
        w.WriteNumber("dropout", shape.Dropout);
        w.WriteNumber("vocab", settings.Vocabulary);
        w.WriteString("attention", settings.Attention);
        w.WriteNumber("ffn_width", shape.FeedForwardWidth);
        w.WriteNumber("embedding_tables", settings.EmbeddingTables);
        if (settings.BranchVariance is { } beta2) w.WriteNumber("beta2", beta2);
        w.WriteNumber("token_correlation", settings.TokenCorrelation);
        w.WriteString("token_correlation_source", settings.TokenCorrelationSource);
        w.WriteString("layer_entries", layerEntries);
        w.WriteEndObject();
    }

    /// <summary>The "init" object: the plan's stds, residual scaling, logit scale and optional rescale (shared with <c>dslm simulate</c>).</summary>
    internal static void WriteInit(System.Text.Json.Utf8JsonWriter w, InitPlan plan)
    {
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
    }

    private static void WriteJson(string path, ModelSettings settings, InitPlan plan, DepthPrediction prediction, SublayerPrediction[] blocks) =>
        MachineInfo.WriteJson(path, w =>
        {
            WriteConfig(w, settings, "one per block: the residual stream after its feed-forward sublayer");
            WriteInit(w, plan);
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

    /// <summary>PATH with the quantity's suffix before its extension (.png when it has none).</summary>
    internal static string PlotPath(string path, string quantity)
    {
        string extension = Path.GetExtension(path) is { Length: > 0 } given ? given : ".png";
        return Path.Combine(Path.GetDirectoryName(path) ?? "", Path.GetFileNameWithoutExtension(path)) + $"-{quantity}{extension}";
    }

    /// <summary>
    /// One figure per quantity (forward variance, correlation, gradient variance against the layer), each at PATH with
    /// the quantity's suffix; a logarithmic y axis where a quantity spans more than a factor 20. Returns the paths written.
    /// </summary>
    private static IEnumerable<string> Plot(string path, ModelSettings settings, SublayerPrediction[] blocks)
    {
        double[] layers = blocks.Select(block => (double)block.Layer).ToArray();
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
            var chart = new LineChart($"{label}: theory ({settings.Subject})", "layer", label, logY).Add(new ChartSeries(
                spread ? "theory (band: min..max over positions)" : "theory", layers, values, Dashed: true, ColorIndex: i,
                spread ? blocks.Select(block => block.PositionVariance.Min()).ToArray() : null,
                spread ? blocks.Select(block => block.PositionVariance.Max()).ToArray() : null));
            string file = PlotPath(path, name);
            chart.Save(file);
            yield return file;
        }
    }
}
