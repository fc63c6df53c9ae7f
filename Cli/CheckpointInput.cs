using System.CommandLine;
using DeepScaleLM.Layers;
using DeepScaleLM.Training.Checkpoints;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Cli;

/// <summary>What <c>dslm eval</c>, <c>generate</c> and <c>grad</c> share: the --checkpoint and --tokenizer options
/// and the rule that picks the tokenizer of a checkpoint.</summary>
internal static class CheckpointInput
{
    /// <summary>--checkpoint DIR (required; checked by <see cref="Folder"/> so a missing one is a named error).</summary>
    public static Option<string?> CheckpointOption() => new("--checkpoint")
    {
        Description = "checkpoint folder (config.json + model.safetensors, as `dslm train` writes it); required",
    };

    /// <summary>--tokenizer, defaulting to the checkpoint's.</summary>
    public static Option<string?> TokenizerOption() => new("--tokenizer")
    {
        Description = "byte, cl100k or bpe:FOLDER (default: the checkpoint's, from trainer-state.json, else byte)",
    };

    /// <summary>The --checkpoint value.</summary>
    /// <exception cref="ArgumentException">It was not given.</exception>
    public static string Folder(ParseResult parse, Option<string?> checkpoint) =>
        parse.GetValue(checkpoint) is { Length: > 0 } folder ? folder : throw new ArgumentException("--checkpoint DIR is required");

    /// <summary>
    /// The tokenizer for the checkpoint in <paramref name="directory"/>: the one its trainer-state.json records, or
    /// <paramref name="requested"/>, or byte when neither says. Asking for another tokenizer than the recorded one is an
    /// error, since the model's ids would mean other text.
    /// </summary>
    /// <exception cref="ArgumentException">The requested tokenizer differs from the recorded one.</exception>
    /// <exception cref="FormatException">The requested text is not a tokenizer spec.</exception>
    /// <exception cref="CheckpointFormatException">trainer-state.json exists but is invalid.</exception>
    public static TokenizerSpec Tokenizer(string directory, string? requested)
    {
        string statePath = Path.Combine(directory, CheckpointDirectory.TrainerStateFile);
        var recorded = File.Exists(statePath) ? TrainerState.Read(statePath).Tokenizer : null;
        var asked = requested is null ? null : TokenizerSpec.Parse(requested);
        if (recorded is not null && asked is not null && recorded != asked)
            throw new ArgumentException($"--tokenizer {asked} differs from the tokenizer the checkpoint was trained with ({recorded}, in {statePath})");
        return asked ?? recorded ?? TokenizerSpec.Byte;
    }

    /// <summary>Builds <paramref name="spec"/> and checks that its ids fit the model of <paramref name="config"/> (a
    /// masked LM keeps its last id for the mask).</summary>
    /// <exception cref="ArgumentException">The tokenizer has more ids than the model takes.</exception>
    /// <exception cref="IOException">A BPE folder is missing or its files are invalid.</exception>
    public static ITokenizer CreateTokenizer(TokenizerSpec spec, ModelConfig config)
    {
        ITokenizer tokenizer;
        try { tokenizer = spec.Create(); }
        catch (InvalidDataException e) { throw new IOException($"tokenizer {spec}: {e.Message}", e); }
        int usable = config.Kind == ModelKind.Encoder ? config.Vocabulary - 1 : config.Vocabulary;
        if (tokenizer.VocabularySize > usable)
            throw new ArgumentException($"tokenizer {spec} has {tokenizer.VocabularySize} ids, the model takes {usable}" +
                (config.Kind == ModelKind.Encoder ? " (its last id is the mask)" : ""));
        return tokenizer;
    }
}
