using System.CommandLine;
using System.Diagnostics;
using DeepScaleLM.Cli.Plotting;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Theory;
using DeepScaleLM.Theory.Components;
using DeepScaleLM.Theory.Schemes;

namespace DeepScaleLM.Cli;

/// <summary>What feeds a simulated model.</summary>
internal enum SimulatedInputs
{
    /// <summary>Token ids i.i.d. uniform over the vocabulary: r0 = (1 / |V|) / 2.</summary>
    Uniform,
    /// <summary>Token ids i.i.d. from Zipf's law p_i ~ 1 / (i + 1): r0 = sum_i p_i^2 / 2.</summary>
    Zipf,
    /// <summary>Token ids i.i.d. from p_i ~ 1 / (i + 1)^2: r0 ~ 0.2 over 256 ids, about the 0.221 the official DSLM init
    /// designs for (open-problems.md 1).</summary>
    ZipfSquared,
    /// <summary>Every (sequence, position) its own token id, so the embedding rows are independent Gaussians: r0 = 0.</summary>
    Gaussian,
}

/// <summary>Where the simulated backward pass starts.</summary>
internal enum HeadGradient
{
    /// <summary>The LM loss's gradient for random targets, through the head.</summary>
    Loss,
    /// <summary>An N(0, 1) gradient at the head input drawn independently of the forward pass: the top the theory's
    /// gradient recursion assumes (variance 1, uncorrelated across tokens).</summary>
    Independent,
}

/// <summary>One quantity of one block over the seeds: the mean, the sample std and the min..max.</summary>
internal readonly record struct SeedSpread(double Mean, double Std, double Min, double Max)
{
    /// <summary>The statistics of <paramref name="values"/> (std 0 for one seed).</summary>
    public static SeedSpread Of(IReadOnlyList<double> values)
    {
        double mean = values.Average();
        double std = values.Count > 1 ? Math.Sqrt(values.Sum(v => (v - mean) * (v - mean)) / (values.Count - 1)) : 0;
        return new SeedSpread(mean, std, values.Min(), values.Max());
    }
}

/// <summary>One block's measurement beside the theory's prediction of the same tensor.</summary>
/// <param name="Layer">The block, from 0.</param>
/// <param name="Theory">The theory's prediction at that block (DepthRecursion's feed-forward sublayer entry).</param>
/// <param name="ForwardVariance">The residual stream's variance over the seeds.</param>
/// <param name="Correlation">Its token correlation over the seeds.</param>
/// <param name="GradientVariance">The gradient variance there, divided by the gradient variance at the head input (the
/// theory's top, variance 1), over the seeds.</param>
internal sealed record SimulatedLayer(int Layer, SublayerPrediction Theory, SeedSpread ForwardVariance, SeedSpread Correlation, SeedSpread GradientVariance);

/// <summary>A whole simulation: the model, the plan it was built with, the inputs, and every block.</summary>
internal sealed record Simulation(ModelSettings Settings, InitPlan Plan, SimulatedInputs Inputs, HeadGradient Top, bool UntiedHead, int Seeds,
    int Batch, IReadOnlyList<SimulatedLayer> Layers, double Seconds)
{
    /// <summary>Measured max / min over blocks of the per-block mean gradient norm (the square root of the variance ratio).</summary>
    public double GradientNormRatio => Math.Sqrt(Layers.Max(l => l.GradientVariance.Mean) / Layers.Min(l => l.GradientVariance.Mean));

    /// <summary>The theory's max / min over blocks of the stream-gradient norm.</summary>
    public double TheoryGradientNormRatio => Math.Sqrt(Layers.Max(l => l.Theory.StreamGradient.Variance) / Layers.Min(l => l.Theory.StreamGradient.Variance));
}

/// <summary>
/// <c>dslm simulate</c>: builds the real model (Layers' TransformerModel, fp32, CPU) at init over several seeds, feeds
/// random tokens or Gaussian inputs with random targets, runs forward and the LM loss's backward (or an independent head gradient's), and measures per
/// block the residual stream's variance and token correlation and the gradient variance at the same tensor, beside
/// Theory's DepthRecursion for the same model and r0 (docs/theory.md, "Simulation").
/// </summary>
internal static class SimulateCommand
{
    private const int EmbeddingTables = 2; // Layers' models sum a token and a position table

    public static Command Create(TextWriter output)
    {
        var model = new ModelFlags(layers: 24, modelWidth: 64, heads: 4, sequenceLength: 64, dropout: 0, vocabulary: 256);
        var seeds = new Option<int>("--seeds") { Description = "independent inits (and inputs) to measure; the spread is over them", DefaultValueFactory = _ => 3 };
        var inputs = new Option<string>("--tokens")
        {
            Description = "uniform (i.i.d. uniform ids over --vocab), zipf (Zipf's law over --vocab), zipf2 (p_i ~ 1/i^2: r0 ~ 0.2 over 256 " +
                "ids, near the official init's design value 0.221) or gaussian (every position its own id, so the embedding rows are independent " +
                "unit-variance Gaussians, r0 = 0); the theory's r0 is sum p_i^2 / 2 exactly",
            DefaultValueFactory = _ => "uniform",
        };
        var top = new Option<string>("--head-gradient")
        {
            Description = "loss (the LM loss's gradient for random targets) or independent (an N(0, 1) gradient at the head input, " +
                "independent of the forward pass: the theory's assumption, which the loss's gradient breaks in vanilla stacks)",
            DefaultValueFactory = _ => "loss",
        };
        var untied = new Option<bool>("--untied-head")
        {
            Description = "an LM head of its own (N(0, 1/d)) instead of the token table: the loss gradient at init then no longer points " +
                "along the input tokens' embeddings",
        };
        var batch = new Option<int>("--batch") { Description = "sequences per forward pass", DefaultValueFactory = _ => 2 };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var json = new Option<string?>("--json") { Description = "write config, init and per-block theory and measurement (mean, _std, _spread) as JSON" };
        var plot = new Option<string?>("--plot")
        {
            Description = "draw theory (dashed) and measurement (solid, band: min..max over seeds) per block, one figure per quantity: " +
                "PATH gets the suffixes -forward_variance, -correlation and -grad_variance before its extension (.png, or .svg)",
        };
        var command = new Command("simulate",
            "Measure, at init (on the CPU, or --device cuda), the real model's residual stream variance, token correlation and gradient variance after " +
            "every block over several seeds, beside the theory's prediction (dslm theory) for the same model.");
        foreach (var option in model.Options.Concat([seeds, inputs, top, untied, batch, device, threads, json, plot])) command.Options.Add(option);
        command.SetAction(parse =>
        {
            var kind = ParseInputs(parse.GetValue(inputs)!);
            var headGradient = parse.GetValue(top) switch
            {
                "loss" => HeadGradient.Loss,
                "independent" => HeadGradient.Independent,
                var other => throw new ArgumentException($"--head-gradient must be loss or independent (got '{other}')"),
            };
            var settings = model.Read(parse, EmbeddingTables, (vocabulary, tables) => TokenCorrelation(kind, vocabulary, tables));
            int seedCount = parse.GetValue(seeds), batchSize = parse.GetValue(batch);
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            var simulation = Run(backend, settings, kind, seedCount, batchSize, headGradient, parse.GetValue(untied));
            Print(output, simulation);
            if (parse.GetValue(json) is { } path) WriteJson(path, simulation);
            if (parse.GetValue(plot) is { } plotPath)
                foreach (var written in Plot(plotPath, simulation)) output.WriteLine($"wrote {written}");
            return 0;
        });
        return command;
    }

    private static SimulatedInputs ParseInputs(string text) => text switch
    {
        "uniform" => SimulatedInputs.Uniform,
        "zipf" => SimulatedInputs.Zipf,
        "zipf2" => SimulatedInputs.ZipfSquared,
        "gaussian" => SimulatedInputs.Gaussian,
        _ => throw new ArgumentException($"--tokens must be uniform, zipf, zipf2 or gaussian (got '{text}')"),
    };

    /// <summary>r0 of the inputs: the token table is the only one two positions share (PositionAwareInit.TokenCorrelation).</summary>
    private static (string Source, double Value) TokenCorrelation(SimulatedInputs inputs, int vocabulary, int tables) => inputs switch
    {
        SimulatedInputs.Gaussian => ("gaussian", 0),
        SimulatedInputs.ZipfSquared => ("zipf2", PositionAwareInit.TokenCorrelation(Embedding.ZipfCollisionProbability(vocabulary, exponent: 2), tables)),
        _ => ModelFlags.UnigramCorrelation(inputs == SimulatedInputs.Zipf ? "zipf" : "uniform", vocabulary, tables),
    };

    /// <summary>Simulates <paramref name="settings"/> over <paramref name="seeds"/> seeds (1, 2, ...) with batches of
    /// <paramref name="batch"/> sequences of the model's sequence length, back-propagating from <paramref name="top"/>, with
    /// the token table as the LM head or, with <paramref name="untiedHead"/>, a head of its own.</summary>
    /// <exception cref="ArgumentException">A count is not positive, or the model is not one Layers can build.</exception>
    public static Simulation Run(Backend backend, ModelSettings settings, SimulatedInputs inputs, int seeds, int batch,
        HeadGradient top = HeadGradient.Loss, bool untiedHead = false)
    {
        if (seeds < 1) throw new ArgumentException($"--seeds must be positive (got {seeds})");
        if (batch < 1) throw new ArgumentException($"--batch must be positive (got {batch})");
        if (settings.Norm == "none" && settings.Init != "espa")
            throw new ArgumentException($"--norm none builds the vanilla E-SPA stack: use it with --init espa (got --init {settings.Init})");
        var shape = settings.Shape;
        int rows = batch * shape.SequenceLength;
        // Gaussian inputs: one id per (sequence, position), so no two positions share a token row.
        int vocabulary = inputs == SimulatedInputs.Gaussian ? Math.Max(settings.Vocabulary, rows) : settings.Vocabulary;
        var config = Config(settings, vocabulary) with { TiedHead = !untiedHead };
        var clock = Stopwatch.StartNew();
        var forward = new double[shape.Layers][];
        var correlation = new double[shape.Layers][];
        var gradient = new double[shape.Layers][];
        for (int l = 0; l < shape.Layers; l++) (forward[l], correlation[l], gradient[l]) = (new double[seeds], new double[seeds], new double[seeds]);
        InitPlan? plan = null;
        var tokens = new int[rows];
        var targets = new int[rows];
        float[]? headGradient = null;
        for (int s = 0; s < seeds; s++)
        {
            using var transformer = TransformerModel.Create(backend, config with { Seed = s + 1 }, batch, shape.SequenceLength);
            plan ??= transformer.TheoryPlan()?.Plan ?? settings.Plan();
            var random = new Random(s + 1);
            FillInputs(tokens, inputs, vocabulary, random);
            for (int i = 0; i < rows; i++) targets[i] = random.Next(vocabulary);
            transformer.Forward(tokens, targets, training: shape.Dropout > 0, dropoutSeed: (ulong)(s + 1));
            if (top == HeadGradient.Independent)
            {
                FillNormals(headGradient ??= new float[rows * shape.ModelWidth], seed: (ulong)(s + 1));
                transformer.BackwardFromHeadInput(headGradient);
            }
            else
                transformer.Backward();
            double topVariance = transformer.HeadInputGradientMoments().Variance;
            var moments = transformer.ResidualStreamMoments();
            for (int l = 0; l < shape.Layers; l++)
                (forward[l][s], correlation[l][s], gradient[l][s]) = (moments[l].Stream.Variance, moments[l].Stream.Correlation, moments[l].Gradient.Variance / topVariance);
        }
        double seconds = clock.Elapsed.TotalSeconds;
        // The theory of the model as built: no dropout on the attention probabilities (the op has none).
        var theoryShape = shape with { AttentionDropout = 0 };
        var prediction = DepthRecursion.Predict(theoryShape, plan!, settings.Placement, settings.TokenCorrelation).Layers.ToArray();
        var layers = new SimulatedLayer[shape.Layers];
        for (int l = 0; l < layers.Length; l++)
            layers[l] = new SimulatedLayer(l, prediction[l], SeedSpread.Of(forward[l]), SeedSpread.Of(correlation[l]), SeedSpread.Of(gradient[l]));
        return new Simulation(settings, plan!, inputs, top, untiedHead, seeds, batch, layers, seconds);
    }

    /// <summary>The Layers config of the settings: fp32, a decoder (causal) or encoder (bidirectional), no recomputation.</summary>
    private static ModelConfig Config(ModelSettings settings, int vocabulary)
    {
        var shape = settings.Shape;
        var config = new ModelConfig
        {
            Kind = settings.Causal ? ModelKind.Decoder : ModelKind.Encoder,
            Vocabulary = vocabulary,
            Layers = shape.Layers,
            ModelWidth = shape.ModelWidth,
            Heads = shape.Heads,
            SequenceLength = shape.SequenceLength,
            Norm = settings.Norm switch { "pre" => Layers.NormPlacement.Pre, "post" => Layers.NormPlacement.Post, _ => Layers.NormPlacement.None },
            Dropout = (float)shape.Dropout,
            Init = settings.Init switch
            {
                "dslm" => InitScheme.Dslm,
                "dslm-position" => InitScheme.DslmPosition,
                "xavier" => InitScheme.Xavier,
                "deepnet" => InitScheme.DeepNet,
                "simple" => InitScheme.Simple,
                _ => InitScheme.Espa,
            },
            TokenCorrelation = settings.TokenCorrelation,
        };
        // A fixed beta^2 is k / N^0.
        return settings.BranchVariance is { } beta2 ? config with { ResidualK = beta2, ResidualExponent = 0 } : config;
    }

    /// <summary>N(0, 1) values from Philox (seed, offset 0), as Backend.RandomNormal draws them.</summary>
    private static void FillNormals(float[] values, ulong seed)
    {
        var draws = new double[values.Length];
        Philox.Normals(draws, seed, 0);
        for (int i = 0; i < values.Length; i++) values[i] = (float)draws[i];
    }

    private static void FillInputs(int[] tokens, SimulatedInputs inputs, int vocabulary, Random random)
    {
        if (inputs == SimulatedInputs.Gaussian)
        {
            for (int i = 0; i < tokens.Length; i++) tokens[i] = i;
            return;
        }
        if (inputs == SimulatedInputs.Uniform)
        {
            for (int i = 0; i < tokens.Length; i++) tokens[i] = random.Next(vocabulary);
            return;
        }
        // Zipf: inverse CDF of p_i ~ 1 / (i + 1)^s.
        double exponent = inputs == SimulatedInputs.ZipfSquared ? 2 : 1;
        var cumulative = new double[vocabulary];
        double total = 0;
        for (int i = 0; i < vocabulary; i++) cumulative[i] = total += Math.Pow(i + 1, -exponent);
        for (int i = 0; i < tokens.Length; i++)
        {
            int index = Array.BinarySearch(cumulative, random.NextDouble() * total);
            tokens[i] = Math.Min(index < 0 ? ~index : index, vocabulary - 1);
        }
    }

    private static void Print(TextWriter output, Simulation simulation)
    {
        var (settings, shape) = (simulation.Settings, simulation.Settings.Shape);
        output.WriteLine($"simulate: {settings.Subject}, {shape.Heads} heads, p {shape.Dropout}, {simulation.Inputs.ToString().ToLowerInvariant()} inputs " +
            $"(r0 {settings.TokenCorrelation:G4}), {simulation.Seeds} seeds x batch {simulation.Batch}, " +
            $"{(simulation.Top == HeadGradient.Loss ? "loss" : "independent")} head gradient, {(simulation.UntiedHead ? "untied" : "tied")} head: " +
            $"{simulation.Seconds:F1} s");
        output.WriteLine("per block: the residual stream as the theory indexes it (Pre-LN: block output; Post-LN: the LayerNorm input " +
            "lam x + beta f(x)); gradient variance relative to the head input's; measured = mean +- std over seeds");
        output.WriteLine($"{"layer",5} {"variance theory",15} {"measured",17} {"r theory",9} {"measured",17} {"grad theory",11} {"measured",17}");
        foreach (var l in simulation.Layers)
            output.WriteLine($"{l.Layer,5} {l.Theory.Stream.Variance,15:G4} {Cell(l.ForwardVariance),17} {l.Theory.Stream.Correlation,9:F4} " +
                $"{Cell(l.Correlation),17} {l.Theory.StreamGradient.Variance,11:G4} {Cell(l.GradientVariance),17}");
        output.WriteLine($"residual variance: measured {simulation.Layers.Min(l => l.ForwardVariance.Mean):G4}..{simulation.Layers.Max(l => l.ForwardVariance.Mean):G4}, " +
            $"theory {simulation.Layers.Min(l => l.Theory.Stream.Variance):G4}..{simulation.Layers.Max(l => l.Theory.Stream.Variance):G4}");
        output.WriteLine($"gradient norm max/min over blocks: measured {simulation.GradientNormRatio:G4}, theory {simulation.TheoryGradientNormRatio:G4}");
    }

    private static string Cell(SeedSpread spread) => $"{spread.Mean:G4} +- {spread.Std:G2}";

    private static void WriteJson(string path, Simulation simulation) =>
        MachineInfo.WriteJson(path, w =>
        {
            TheoryCommand.WriteConfig(w, simulation.Settings, "one per block: the residual stream as the theory indexes it (Pre-LN: the block " +
                "output before the final LN; Post-LN: the last sublayer's LayerNorm input); measured values are means over seeds, _std their " +
                "sample std, _spread max - min; grad_variance relative to the gradient at the head input");
            TheoryCommand.WriteInit(w, simulation.Plan);
            w.WriteString("tokens", simulation.Inputs.ToString().ToLowerInvariant());
            w.WriteString("head_gradient", simulation.Top == HeadGradient.Loss ? "loss" : "independent");
            w.WriteBoolean("untied_head", simulation.UntiedHead);
            w.WriteNumber("seeds", simulation.Seeds);
            w.WriteNumber("batch", simulation.Batch);
            w.WriteNumber("seconds", simulation.Seconds);
            w.WriteNumber("grad_norm_ratio", simulation.GradientNormRatio);
            w.WriteNumber("theory_grad_norm_ratio", simulation.TheoryGradientNormRatio);
            w.WriteStartArray("layers");
            foreach (var l in simulation.Layers)
            {
                w.WriteStartObject();
                w.WriteNumber("layer", l.Layer);
                foreach (var (name, spread, theory) in Quantities(l))
                {
                    w.WriteNumber(name, spread.Mean);
                    w.WriteNumber($"{name}_std", spread.Std);
                    w.WriteNumber($"{name}_spread", spread.Max - spread.Min);
                    w.WriteNumber($"theory_{name}", theory);
                }
                w.WriteEndObject();
            }
            w.WriteEndArray();
        });

    private static (string Name, SeedSpread Measured, double Theory)[] Quantities(SimulatedLayer l) =>
    [
        ("forward_variance", l.ForwardVariance, l.Theory.Stream.Variance),
        ("correlation", l.Correlation, l.Theory.Stream.Correlation),
        ("grad_variance", l.GradientVariance, l.Theory.StreamGradient.Variance),
    ];

    /// <summary>One figure per quantity: theory dashed, measurement solid with its min..max band over seeds; returns the paths.</summary>
    private static IEnumerable<string> Plot(string path, Simulation simulation)
    {
        double[] layers = simulation.Layers.Select(l => (double)l.Layer).ToArray();
        string[] labels = ["residual stream variance", "token correlation r", "gradient variance"];
        for (int i = 0; i < labels.Length; i++)
        {
            var rows = simulation.Layers.Select(l => Quantities(l)[i]).ToArray();
            string name = rows[0].Name;
            double[] all = [.. rows.Select(r => r.Theory), .. rows.Select(r => r.Measured.Min), .. rows.Select(r => r.Measured.Max)];
            bool logY = all.Min() > 0 && all.Max() > 20 * all.Min();
            var chart = new LineChart($"{labels[i]}: theory vs simulation ({simulation.Settings.Subject})", "layer", labels[i], logY)
                .Add(new ChartSeries("theory", layers, rows.Select(r => r.Theory).ToArray(), Dashed: true, ColorIndex: i))
                .Add(new ChartSeries($"simulation (mean, band: min..max over {simulation.Seeds} seeds)", layers,
                    rows.Select(r => r.Measured.Mean).ToArray(), ColorIndex: i,
                    Lower: rows.Select(r => r.Measured.Min).ToArray(), Upper: rows.Select(r => r.Measured.Max).ToArray()));
            string file = TheoryCommand.PlotPath(path, name);
            chart.Save(file);
            yield return file;
        }
    }
}
