using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace DeepScaleLM.Training.Data;

/// <summary>
/// Byte-pair encoding through Microsoft.ML.Tokenizers, behind <see cref="ITokenizer"/>: tiktoken's cl100k_base
/// (<see cref="Cl100kBase"/>, its data embedded in the Microsoft.ML.Tokenizers.Data.Cl100kBase package, so it works
/// offline) or a GPT-2-style byte-level BPE read from a folder's <c>vocab.json</c> + <c>merges.txt</c>
/// (<see cref="FromGpt2Files"/>). Both are byte-level: every UTF-8 string encodes and decodes back unchanged.
/// </summary>
/// <remarks>
/// Special tokens written literally in the text (cl100k's <c>&lt;|endoftext|&gt;</c>, say) encode as the special
/// token, as the library does. Ids inside [0, <see cref="VocabularySize"/>) that no token uses (cl100k has such
/// holes, e.g. 100256) decode to nothing.
/// </remarks>
public sealed class BytePairTokenizer : ITokenizer
{
    /// <summary>The vocabulary file of a GPT-2-style BPE folder: a JSON object from token string to id.</summary>
    public const string VocabularyFileName = "vocab.json";

    /// <summary>The merges file of a GPT-2-style BPE folder: one "left right" pair per line, highest priority first.</summary>
    public const string MergesFileName = "merges.txt";

    const string EndOfText = "<|endoftext|>";

    // GPT-2's pre-tokenization pattern (openai/gpt-2 encoder.py): contractions, letters, digits and other symbols
    // each with one optional leading space, then whitespace runs (all but the last space when a word follows).
    static readonly Regex Gpt2PreTokenization = new(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.Compiled);

    static readonly Lazy<BytePairTokenizer> Cl100k = new(() =>
    {
        var tokenizer = TiktokenTokenizer.CreateForEncoding("cl100k_base");
        // The special tokens (100257..100276) lie above every merged token (0..100255), so the largest special id
        // + 1 is tiktoken's n_vocab, 100277.
        return new BytePairTokenizer(tokenizer, tokenizer.SpecialTokens!.Values.Max() + 1);
    });

    readonly Tokenizer _tokenizer;

    BytePairTokenizer(Tokenizer tokenizer, int vocabularySize)
    {
        _tokenizer = tokenizer;
        VocabularySize = vocabularySize;
    }

    /// <summary>tiktoken's cl100k_base (the GPT-3.5/GPT-4 encoding), vocabulary 100,277; one shared instance.</summary>
    public static BytePairTokenizer Cl100kBase() => Cl100k.Value;

    /// <summary>A GPT-2-style byte-level BPE from <paramref name="folder"/>/vocab.json and merges.txt: GPT-2's
    /// pre-tokenization rule, then merges over the text's UTF-8 bytes, each byte written as GPT-2's printable
    /// stand-in (space is 'Ġ'). The vocabulary must hold all 256 byte symbols, so that every text encodes and
    /// round-trips; <c>&lt;|endoftext|&gt;</c>, when in the vocabulary, is a special token (as in GPT-2).</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">vocab.json or merges.txt is missing (the message names it).</exception>
    /// <exception cref="InvalidDataException">A file is not valid (the message names the folder and the problem).</exception>
    public static BytePairTokenizer FromGpt2Files(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"BPE folder '{folder}' does not exist");
        string vocabularyPath = Path.Combine(folder, VocabularyFileName);
        string mergesPath = Path.Combine(folder, MergesFileName);
        foreach (string file in new[] { vocabularyPath, mergesPath })
            if (!File.Exists(file)) throw new FileNotFoundException($"BPE folder '{folder}' has no {Path.GetFileName(file)} (it needs {VocabularyFileName} and {MergesFileName})", file);
        var vocabulary = ReadVocabulary(vocabularyPath);
        var merges = ReadMerges(mergesPath);
        string? missing = Gpt2ByteSymbols().FirstOrDefault(symbol => !vocabulary.ContainsKey(symbol));
        if (missing is not null)
            throw new InvalidDataException($"{vocabularyPath}: lacks the byte symbol '{missing}' (U+{(int)missing[0]:X4}); a byte-level vocabulary needs all 256");
        Dictionary<string, int>? special = vocabulary.TryGetValue(EndOfText, out int endOfText) ? new() { [EndOfText] = endOfText } : null;
        var options = new BpeOptions(vocabulary)
        {
            Merges = merges,
            ByteLevel = true,
            SpecialTokens = special,
            PreTokenizer = new RegexPreTokenizer(Gpt2PreTokenization, special),
        };
        try
        {
            return new BytePairTokenizer(Microsoft.ML.Tokenizers.BpeTokenizer.Create(options), vocabulary.Values.Max() + 1);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            throw new InvalidDataException($"BPE folder '{folder}': {VocabularyFileName} and {MergesFileName} do not fit together: {e.Message}", e);
        }
    }

    /// <summary>vocab.json: one JSON object from token string to a distinct non-negative id. Read here rather than
    /// by the library, whose file reader uses reflection-based JSON (a NativeAOT warning).</summary>
    static Dictionary<string, int> ReadVocabulary(string path)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        var ids = new HashSet<int>();
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            if (document.RootElement.ValueKind != JsonValueKind.Object) throw new InvalidDataException($"{path}: not a JSON object of token -> id");
            foreach (var token in document.RootElement.EnumerateObject())
            {
                if (!token.Value.TryGetInt32(out int id) || id < 0) throw new InvalidDataException($"{path}: token '{token.Name}' has no non-negative integer id");
                if (!vocabulary.TryAdd(token.Name, id)) throw new InvalidDataException($"{path}: token '{token.Name}' appears twice");
                if (!ids.Add(id)) throw new InvalidDataException($"{path}: id {id} is given to two tokens");
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
        if (vocabulary.Count == 0) throw new InvalidDataException($"{path}: the vocabulary is empty");
        return vocabulary;
    }

    /// <summary>merges.txt: an optional "#version" first line, then one "left right" pair per line.</summary>
    static List<string> ReadMerges(string path)
    {
        var merges = new List<string>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new InvalidDataException($"{path} line {lineNumber}: '{line}' is not two tokens separated by one space");
            merges.Add(line);
        }
        return merges;
    }

    /// <summary>GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): the printable bytes '!'..'~', 0xA1..0xAC and
    /// 0xAE..0xFF stand for themselves; the other 68 bytes, in byte order, for U+0100, U+0101, ...</summary>
    static IEnumerable<string> Gpt2ByteSymbols()
    {
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            yield return ((char)(printable ? b : 256 + next++)).ToString();
        }
    }

    /// <inheritdoc/>
    public int VocabularySize { get; }

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return [.. _tokenizer.EncodeToIds(text)];
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var ids = new int[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)VocabularySize)
                throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[i]} at position {i} is outside the vocabulary [0, {VocabularySize})");
            ids[i] = tokens[i];
        }
        return _tokenizer.Decode(ids);
    }
}
