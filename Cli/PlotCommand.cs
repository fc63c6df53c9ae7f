using System.CommandLine;
using System.Globalization;
using DeepScaleLM.Cli.Plotting;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Evaluation;
using DeepScaleLM.Training.Metrics;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm plot RUN_DIR... --out PNG</c>: overlays one quantity of several <c>dslm train</c> runs (their metrics logs) on
/// one chart, prints each run's last and best value, and optionally draws the unigram baseline of the validation text,
/// so that an experiment (docs/experiments.md) is one chart and a few numbers. Every number comes from the logs or from
/// <see cref="UnigramBaseline"/>; this file reads, checks and draws.
/// </summary>
internal static class PlotCommand
{
    /// <summary>A quantity of the metrics log that <c>dslm plot</c> can draw.</summary>
    private sealed record Quantity(string Name, string AxisLabel, Func<MetricsEntry, double?> Value);

    private static readonly Quantity[] Quantities =
    [
        new("loss", "training loss (nats per token)", entry => entry.Loss),
        new("validation", "validation loss (nats per token)", entry => entry.ValidationLoss),
        new("grad_norm", "gradient norm (before clipping)", entry => entry.GradientNorm),
    ];

    /// <summary>One run's points of the chosen quantity: the finite ones, and where the first non-finite one was.</summary>
    private sealed record RunSeries(string Label, double[] Steps, double[] Values, int NonFinite, long? FirstNonFiniteStep);

    public static Command Create(TextWriter output)
    {
        var runs = new Argument<string[]>("runs")
        {
            Description = "output folders of `dslm train` (each holds metrics.jsonl)",
            Arity = ArgumentArity.OneOrMore,
        };
        var outPath = new Option<string>("--out") { Description = "the chart to write: PNG, or SVG when it ends in .svg", Required = true };
        var quantity = new Option<string>("--quantity")
        {
            Description = $"what to draw against the step: {string.Join(", ", Quantities.Select(q => q.Name))}",
            DefaultValueFactory = _ => "validation",
        };
        var labels = new Option<string?>("--labels") { Description = "legend names, comma-separated, one per run (default: the folder names)" };
        var logY = new Option<bool>("--log-y") { Description = "logarithmic y axis" };
        var title = new Option<string?>("--title") { Description = "chart title (default: the quantity)" };
        var unigram = new Option<string?>("--unigram")
        {
            Description = "a byte-level .tokens file (e.g. the Brown corpus cache of `dslm data brown`): print the unigram bits per byte of " +
                "its validation tail and, for loss or validation, draw it as a dashed line in nats per byte",
        };
        var validationFraction = new Option<double>("--validation-fraction")
        {
            Description = "with --unigram: the held-out tail, as the runs used it (dslm train's default)",
            DefaultValueFactory = _ => new TrainingOptions().ValidationFraction,
        };
        var command = new Command("plot",
            "Overlay the training loss, validation loss or gradient norm of several `dslm train` runs on one chart, print each run's " +
            "last and best value, and optionally the unigram baseline of the validation text.")
        {
            runs, outPath, quantity, labels, logY, title, unigram, validationFraction,
        };
        command.SetAction(parse =>
        {
            string[] folders = parse.GetValue(runs)!;
            var chosen = ParseQuantity(parse.GetValue(quantity)!);
            var names = Labels(parse.GetValue(labels), folders);
            var series = folders.Select((folder, i) => ReadRun(folder, names[i], chosen)).ToList();
            string path = parse.GetValue(outPath)!;
            bool log = parse.GetValue(logY);
            var chart = new LineChart(parse.GetValue(title) ?? chosen.AxisLabel, "step", chosen.AxisLabel, log);
            foreach (var run in series)
            {
                chart.Add(new ChartSeries(run.Label, run.Steps, run.Values));
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{run.Label}: {chosen.Name} at step {run.Steps[^1]:F0} = {run.Values[^1]:F4}, best {run.Values.Min():F4} (step {run.Steps[Array.IndexOf(run.Values, run.Values.Min())]:F0})"));
                if (run.NonFinite > 0)
                    output.WriteLine($"{run.Label}: {run.NonFinite} non-finite value(s) not drawn, the first at step {run.FirstNonFiniteStep}");
            }
            if (parse.GetValue(unigram) is string tokens)
            {
                double bits = ValidationUnigramBitsPerByte(tokens, parse.GetValue(validationFraction), output);
                if (chosen.Name is "loss" or "validation")
                {
                    // Byte tokens: nats per token = nats per byte = bits per byte * ln 2.
                    double nats = bits * Math.Log(2);
                    double first = series.Min(run => run.Steps[0]), last = series.Max(run => run.Steps[^1]);
                    chart.Add(new ChartSeries($"unigram baseline ({bits:F3} bits/byte)", [first, last], [nats, nats], Dashed: true, ColorIndex: 7));
                }
            }
            if (Path.GetDirectoryName(Path.GetFullPath(path)) is string parent) Directory.CreateDirectory(parent);
            chart.Save(path);
            output.WriteLine($"chart: {path}");
            return 0;
        });
        return command;
    }

    private static Quantity ParseQuantity(string name) =>
        Quantities.FirstOrDefault(q => q.Name == name)
        ?? throw new ArgumentException($"--quantity: '{name}' is not one of {string.Join(", ", Quantities.Select(q => q.Name))}", "--quantity");

    private static string[] Labels(string? labels, string[] folders)
    {
        if (labels is null) return [.. folders.Select(folder => Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))))];
        string[] names = labels.Split(',');
        if (names.Length != folders.Length)
            throw new ArgumentException($"--labels: {names.Length} label(s) for {folders.Length} run(s); give one per run", "--labels");
        return names;
    }

    /// <summary>The steps and values of <paramref name="quantity"/> in one run's metrics log.</summary>
    /// <exception cref="ArgumentException">The folder or its log is missing, or the log has no finite value of the quantity.</exception>
    private static RunSeries ReadRun(string folder, string label, Quantity quantity)
    {
        if (!Directory.Exists(folder)) throw new ArgumentException($"run '{folder}': no such folder", "runs");
        string path = Path.Combine(folder, TrainCommand.MetricsFile);
        if (!File.Exists(path)) throw new ArgumentException($"run '{folder}': no {TrainCommand.MetricsFile} (not an output folder of dslm train?)", "runs");
        IReadOnlyList<MetricsEntry> log;
        try { log = MetricsLog.Read(path); }
        catch (InvalidDataException e) { throw new ArgumentException($"run '{folder}': {e.Message}", "runs", e); }
        var measured = log.Where(entry => quantity.Value(entry) is not null).Select(entry => (entry.Step, Value: quantity.Value(entry)!.Value)).ToList();
        // A diverged run logs NaN or infinite losses: they cannot be drawn, so they are counted and reported instead.
        var finite = measured.Where(point => double.IsFinite(point.Value)).ToList();
        if (finite.Count == 0) throw new ArgumentException($"run '{folder}': its log has no finite {quantity.Name} value", "runs");
        var nonFinite = measured.Where(point => !double.IsFinite(point.Value)).ToList();
        return new RunSeries(label, [.. finite.Select(point => (double)point.Step)], [.. finite.Select(point => point.Value)],
            nonFinite.Count, nonFinite.Count > 0 ? nonFinite[0].Step : null);
    }

    /// <summary>The unigram bits per byte of the validation tail of a byte-level token file (the split dslm train uses).</summary>
    private static double ValidationUnigramBitsPerByte(string path, double validationFraction, TextWriter output)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--unigram: no such token file '{path}'", "--unigram");
        using var reader = TokenFile.Open(path);
        if (reader.VocabularySize > 256)
            throw new ArgumentException($"--unigram: '{path}' has a vocabulary of {reader.VocabularySize}; the unigram baseline in bits per byte needs byte tokens", "--unigram");
        var validation = DataSplit.Of(reader.Count, validationFraction).Validation;
        if (validation.Count == 0) throw new ArgumentException($"--unigram: '{path}' holds {reader.Count} tokens, too few for a validation tail", "--unigram");
        int[] tokens = new int[validation.Count];
        reader.Read(validation.Start, tokens);
        double bits = UnigramBaseline.BitsPerByte(tokens);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"unigram baseline: {bits:F4} bits per byte ({bits * Math.Log(2):F4} nats) over the validation tail of {path} ({validation.Count:N0} bytes)"));
        return bits;
    }
}
