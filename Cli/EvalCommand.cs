using System.CommandLine;
using DeepScaleLM.Layers;
using DeepScaleLM.Training;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Evaluation;

namespace DeepScaleLM.Cli;

/// <summary><c>dslm eval</c>: loss, perplexity and bits per byte of a checkpoint's model on a text or token file
/// (<see cref="ModelEvaluator"/>: every non-overlapping window for a decoder, training's batch draws otherwise).</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter output)
    {
        var checkpoint = CheckpointInput.CheckpointOption();
        var data = new Option<string?>("--data")
        {
            Description = "a UTF-8 text file or folder (tokenized with the tokenizer), or a token file (`dslm data`, `dslm train`, TokenFile); required",
        };
        var tokenizer = CheckpointInput.TokenizerOption();
        var batches = new Option<int?>("--batches") { Description = "evaluate only the first N batches (default: the whole file)" };
        var batch = new Option<int>("--batch") { Description = "sequences per forward", DefaultValueFactory = _ => 8 };
        var tokens = new Option<int?>("--tokens") { Description = "context length T (default: the model's sequence_length)" };
        var seed = new Option<ulong>("--seed") { Description = "encoder and encoder-decoder models: seed of the drawn windows and masks", DefaultValueFactory = _ => 1 };
        var json = new Option<string?>("--json") { Description = "also write the results as JSON to this path" };
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("eval",
            "Loss (nats per token), perplexity, bits per token and bits per byte of a checkpoint on a text or token file, without dropout. " +
            "Decoder: every non-overlapping window of T + 1 tokens in file order, each token after the first predicted once. Masked LM and " +
            "encoder-decoder: the batches training draws (TrainingBatches, draws 0, 1, ... with --seed; the mask fraction of training.json), " +
            "as many windows as tile the file. Deterministic.")
        {
            checkpoint, data, tokenizer, batches, batch, tokens, seed, json, device, threads,
        };
        command.SetAction(parse =>
        {
            string folder = CheckpointInput.Folder(parse, checkpoint);
            string dataPath = parse.GetValue(data) is { Length: > 0 } given ? given : throw new ArgumentException("--data PATH is required");
            int batchSize = parse.GetValue(batch);
            if (batchSize < 1) throw new ArgumentException($"--batch must be at least 1 (got {batchSize})");
            if (parse.GetValue(batches) is < 1) throw new ArgumentException($"--batches must be at least 1 (got {parse.GetValue(batches)})");
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var model = ModelCheckpoint.Load(backend, folder, batchSize, parse.GetValue(tokens));
            var spec = CheckpointInput.Tokenizer(folder, parse.GetValue(tokenizer));
            var textTokenizer = CheckpointInput.CreateTokenizer(spec, model.Config);
            using var reader = EvaluationData.Open(dataPath, textTokenizer);
            var result = ModelEvaluator.Evaluate(model, reader.Tokens, textTokenizer, parse.GetValue(batches), MaskFraction(folder), parse.GetValue(seed));
            var metrics = result.Metrics;
            string kind = ConfigName(model.Config.Kind);
            output.WriteLine($"eval {folder} on {dataPath} ({kind}, tokenizer {spec}, batch {batchSize} x {model.Tokens} tokens, {backend.Device})");
            output.WriteLine($"  {result.Windows} windows in {result.Batches} batches: {metrics.TokenCount} target tokens, {metrics.ByteCount} bytes");
            output.WriteLine($"  loss {metrics.MeanLoss:F4} nats/token, perplexity {metrics.Perplexity:F3}, {metrics.BitsPerToken:F4} bits/token, {metrics.BitsPerByte:F4} bits/byte");
            if (parse.GetValue(json) is { } path)
                MachineInfo.WriteJson(path, w =>
                {
                    w.WriteString("command", "eval");
                    w.WriteString("checkpoint", folder);
                    w.WriteString("data", dataPath);
                    w.WriteString("kind", kind);
                    w.WriteString("tokenizer", spec.ToString());
                    w.WriteNumber("batch", batchSize);
                    w.WriteNumber("tokens", model.Tokens);
                    w.WriteNumber("batches", result.Batches);
                    w.WriteNumber("windows", result.Windows);
                    w.WriteNumber("target_tokens", metrics.TokenCount);
                    w.WriteNumber("bytes", metrics.ByteCount);
                    w.WriteNumber("loss", metrics.MeanLoss);
                    w.WriteNumber("perplexity", metrics.Perplexity);
                    w.WriteNumber("bits_per_token", metrics.BitsPerToken);
                    w.WriteNumber("bits_per_byte", metrics.BitsPerByte);
                });
            return 0;
        });
        return command;
    }

    /// <summary>The kind as config.json writes it.</summary>
    internal static string ConfigName(ModelKind kind) => kind switch
    {
        ModelKind.Decoder => "decoder",
        ModelKind.Encoder => "encoder",
        _ => "encoder_decoder",
    };

    /// <summary>The masked-LM fraction of the run that wrote the checkpoint (training.json), or the training default.</summary>
    private static double MaskFraction(string folder) =>
        File.Exists(Path.Combine(folder, TrainingCheckpoint.OptionsFile))
            ? ModelCheckpoint.ReadJson(folder, TrainingCheckpoint.OptionsFile, TrainingOptions.FromJson).MaskFraction
            : new TrainingOptions().MaskFraction;

    /// <summary>The token file to evaluate: a token file (known by its magic) as it is, or text tokenized into a
    /// temporary token file that is deleted on dispose.</summary>
    private sealed class EvaluationData : IDisposable
    {
        private readonly string? _temporary;

        private EvaluationData(TokenFileReader tokens, string? temporary)
        {
            Tokens = tokens;
            _temporary = temporary;
        }

        public TokenFileReader Tokens { get; }

        public static EvaluationData Open(string path, ITokenizer tokenizer)
        {
            if (File.Exists(path) && TokenFile.IsTokenFile(path))
                return new EvaluationData(TokenFile.Open(path), null);
            string temporary = Path.Combine(Path.GetTempPath(), $"dslm-eval-{Guid.NewGuid():N}.tokens");
            try
            {
                Corpus.Tokenize(path, tokenizer, temporary);
                return new EvaluationData(TokenFile.Open(temporary), temporary);
            }
            catch
            {
                File.Delete(temporary);
                throw;
            }
        }

        public void Dispose()
        {
            Tokens.Dispose();
            if (_temporary is not null) File.Delete(_temporary);
        }
    }
}
