using System.CommandLine;
using System.Text;
using DeepScaleLM.Layers;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;
using DeepScaleLM.Training.Generation;

namespace DeepScaleLM.Cli;

/// <summary><c>dslm generate</c>: continues a prompt with a checkpoint's decoder model (<see cref="TextGenerator"/>,
/// <see cref="TokenSampler"/>) and prints the prompt and the continuation, decoded.</summary>
internal static class GenerateCommand
{
    private const int DefaultTopK = 40;

    public static Command Create(TextWriter output)
    {
        var checkpoint = CheckpointInput.CheckpointOption();
        var prompt = new Option<string>("--prompt") { Description = "the text to continue (at least one token)", DefaultValueFactory = _ => "The " };
        var tokens = new Option<int>("--tokens") { Description = "tokens to generate", DefaultValueFactory = _ => 200 };
        var temperature = new Option<float>("--temperature") { Description = "softmax temperature; 0 is greedy (argmax)", DefaultValueFactory = _ => 0.8f };
        var topK = new Option<int?>("--top-k") { Description = $"sample among the k most likely tokens; 0: all (default {DefaultTopK}, or the vocabulary if smaller)" };
        var seed = new Option<ulong>("--seed") { Description = "fixes the sampled text", DefaultValueFactory = _ => 1 };
        var tokenizer = CheckpointInput.TokenizerOption();
        var device = CliApp.DeviceOption();
        var threads = CliApp.ThreadsOption();
        var command = new Command("generate",
            "Continue --prompt with a checkpoint's decoder model: each step runs the model on the last sequence_length tokens and samples " +
            "the next from softmax(logits / temperature) over the top-k; prints the prompt and the continuation. Decoder models only.")
        {
            checkpoint, prompt, tokens, temperature, topK, seed, tokenizer, device, threads,
        };
        command.SetAction(parse =>
        {
            string folder = CheckpointInput.Folder(parse, checkpoint);
            int count = parse.GetValue(tokens);
            if (count < 0) throw new ArgumentException($"--tokens must not be negative (got {count})");
            using var backend = CliApp.CreateBackend(parse.GetValue(device)!, parse.GetValue(threads));
            using var model = ModelCheckpoint.Load(backend, folder, batchSize: 1);
            if (model.Config.Kind != ModelKind.Decoder)
                throw new ArgumentException($"generate needs a decoder model; the checkpoint in {folder} holds an {EvalCommand.ConfigName(model.Config.Kind)} model (use dslm eval for it)");
            var spec = CheckpointInput.Tokenizer(folder, parse.GetValue(tokenizer));
            var textTokenizer = CheckpointInput.CreateTokenizer(spec, model.Config);
            int[] promptIds = textTokenizer.Encode(parse.GetValue(prompt) ?? "");
            if (promptIds.Length == 0) throw new ArgumentException("--prompt encodes to no tokens: give at least one character");
            int vocabulary = model.Config.Vocabulary;
            var sampler = new TokenSampler(vocabulary, parse.GetValue(temperature), parse.GetValue(topK) ?? Math.Min(DefaultTopK, vocabulary), parse.GetValue(seed));
            var text = TextGenerator.Generate(model, promptIds, count, sampler);
            output.WriteLine(Decode(textTokenizer, text));
            return 0;
        });
        return command;
    }

    /// <summary>The text of <paramref name="ids"/>; a model with more ids than its tokenizer may sample one the tokenizer
    /// cannot decode, which prints as U+FFFD.</summary>
    private static string Decode(ITokenizer tokenizer, int[] ids)
    {
        var text = new StringBuilder();
        int start = 0;
        for (int i = 0; i <= ids.Length; i++)
        {
            if (i < ids.Length && ids[i] < tokenizer.VocabularySize) continue;
            text.Append(tokenizer.Decode(ids.AsSpan(start, i - start)));
            if (i < ids.Length) text.Append('\uFFFD');
            start = i + 1;
        }
        return text.ToString();
    }
}
