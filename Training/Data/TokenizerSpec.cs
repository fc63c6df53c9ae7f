namespace DeepScaleLM.Training.Data;

/// <summary>The tokenizer families <see cref="TokenizerSpec"/> names.</summary>
public enum TokenizerKind
{
    /// <summary>One token per UTF-8 byte (<see cref="ByteTokenizer"/>), spec "byte".</summary>
    Byte,
    /// <summary>tiktoken cl100k_base (<see cref="BytePairTokenizer.Cl100kBase"/>), spec "cl100k".</summary>
    Cl100k,
    /// <summary>GPT-2-style BPE from a folder's vocab.json + merges.txt (<see cref="BytePairTokenizer.FromGpt2Files"/>), spec "bpe:FOLDER".</summary>
    Bpe,
}

/// <summary>
/// Which tokenizer a run uses, as the text that configs and checkpoints record: <c>byte</c>, <c>cl100k</c> or
/// <c>bpe:FOLDER</c>. <see cref="Parse"/> and <see cref="ToString"/> are inverse; <see cref="Create"/> builds it.
/// </summary>
public sealed record TokenizerSpec
{
    const string BpePrefix = "bpe:";

    TokenizerSpec(TokenizerKind kind, string? folder)
    {
        Kind = kind;
        Folder = folder;
    }

    /// <summary>The byte-level tokenizer, the default.</summary>
    public static TokenizerSpec Byte { get; } = new(TokenizerKind.Byte, null);

    /// <summary>tiktoken cl100k_base.</summary>
    public static TokenizerSpec Cl100k { get; } = new(TokenizerKind.Cl100k, null);

    /// <summary>A GPT-2-style BPE read from <paramref name="folder"/> (kept as given, not made absolute).</summary>
    public static TokenizerSpec Bpe(string folder)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(folder);
        return new(TokenizerKind.Bpe, folder);
    }

    /// <summary>The family.</summary>
    public TokenizerKind Kind { get; }

    /// <summary>The BPE folder for <see cref="TokenizerKind.Bpe"/>, else null.</summary>
    public string? Folder { get; }

    /// <summary>Parses "byte", "cl100k" or "bpe:FOLDER" (names case-sensitive, as recorded).</summary>
    /// <exception cref="FormatException">Any other text; the message lists the accepted forms.</exception>
    public static TokenizerSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text == "byte") return Byte;
        if (text == "cl100k") return Cl100k;
        if (text.StartsWith(BpePrefix, StringComparison.Ordinal))
        {
            string folder = text[BpePrefix.Length..];
            if (string.IsNullOrWhiteSpace(folder))
                throw new FormatException($"tokenizer '{text}' names no folder: write bpe:FOLDER, the folder holding vocab.json and merges.txt");
            return Bpe(folder);
        }
        throw new FormatException($"unknown tokenizer '{text}': expected byte, cl100k or bpe:FOLDER");
    }

    /// <summary>Builds the tokenizer (for "bpe:" this reads the folder's files).</summary>
    /// <exception cref="IOException">The BPE folder or one of its files is missing.</exception>
    /// <exception cref="InvalidDataException">The BPE files are invalid.</exception>
    public ITokenizer Create() => Kind switch
    {
        TokenizerKind.Byte => ByteTokenizer.Instance,
        TokenizerKind.Cl100k => BytePairTokenizer.Cl100kBase(),
        _ => BytePairTokenizer.FromGpt2Files(Folder!),
    };

    /// <summary>The recorded form: "byte", "cl100k" or "bpe:FOLDER".</summary>
    public override string ToString() => Kind switch
    {
        TokenizerKind.Byte => "byte",
        TokenizerKind.Cl100k => "cl100k",
        _ => BpePrefix + Folder,
    };
}
