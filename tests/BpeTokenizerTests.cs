using System.Text;
using System.Text.Json;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Tests;

/// <summary>BPE tokenizers behind ITokenizer and the tokenizer spec: cl100k ids checked against values published by
/// tiktoken and its ports, round trips of non-ASCII UTF-8, and a handmade GPT-2 vocabulary whose encoding is worked
/// out by hand from the merge rules.</summary>
public sealed class BpeTokenizerTests
{
    const string NonAscii = "Grüße, naïve café — 日本語 🙂 ok\n\ttabs  and  spaces ";

    // Published check values: tiktoken's tests/test_encoding.py (cl100k_base: "hello world" -> [15339, 1917],
    // "hello <|endoftext|>" with the special token allowed -> [15339, 220, 100257]) and a port's golden pin of
    // Python tiktoken ("是美國" -> [21043, 58666, 12554, 233]).
    [Theory]
    [InlineData("hello world", new[] { 15339, 1917 })]
    [InlineData("hello <|endoftext|>", new[] { 15339, 220, 100257 })]
    [InlineData("是美國", new[] { 21043, 58666, 12554, 233 })]
    public void Cl100kGivesTheIdsTiktokenPublishes(string text, int[] expected)
    {
        var tokenizer = BytePairTokenizer.Cl100kBase();
        Assert.Equal(expected, tokenizer.Encode(text));
        Assert.Equal(text, tokenizer.Decode(expected));
    }

    [Fact]
    public void Cl100kVocabularyIsTiktokensNVocab()
    {
        // tiktoken: cl100k_base.n_vocab == 100277 (max token value 100276, <|endofprompt|>).
        Assert.Equal(100277, BytePairTokenizer.Cl100kBase().VocabularySize);
    }

    [Fact]
    public void Cl100kRoundTripsNonAsciiUtf8()
    {
        var tokenizer = BytePairTokenizer.Cl100kBase();
        int[] ids = tokenizer.Encode(NonAscii);
        Assert.All(ids, id => Assert.InRange(id, 0, tokenizer.VocabularySize - 1));
        Assert.True(ids.Length < Encoding.UTF8.GetByteCount(NonAscii)); // merges happened
        Assert.Equal(NonAscii, tokenizer.Decode(ids));
    }

    [Fact]
    public void DecodeRejectsIdsOutsideTheVocabulary()
    {
        var tokenizer = BytePairTokenizer.Cl100kBase();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([15339, 100277]));
        Assert.Contains("token 100277 at position 1", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => tokenizer.Decode([-1]));
    }

    /// <summary>GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): printable bytes map to themselves, the other 68
    /// bytes to U+0100 + k in byte order, so a space (0x20, the 33rd unprintable byte) is 'Ġ' (U+0120).</summary>
    static string[] Gpt2ByteSymbols()
    {
        var symbols = new string[256];
        int next = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            symbols[b] = ((char)(printable ? b : 256 + next++)).ToString();
        }
        return symbols;
    }

    static string WriteBpeFolder(TempFolder folder, IReadOnlyDictionary<string, int> vocabulary, string merges)
    {
        File.WriteAllText(folder.File("bpe/vocab.json"), JsonSerializer.Serialize(vocabulary));
        File.WriteAllText(folder.File("bpe/merges.txt"), "#version: 0.2\n" + merges);
        return Path.Combine(folder.Path, "bpe");
    }

    /// <summary>A vocabulary of the 256 byte symbols (id = byte) plus <paramref name="merged"/> from id 256 on.</summary>
    static Dictionary<string, int> ByteVocabulary(params string[] merged)
    {
        var symbols = Gpt2ByteSymbols();
        var vocabulary = Enumerable.Range(0, 256).ToDictionary(b => symbols[b], b => b);
        foreach (string token in merged) vocabulary[token] = vocabulary.Count;
        return vocabulary;
    }

    [Fact]
    public void HandmadeVocabularyEncodesAsTheMergeRulesSay()
    {
        using var folder = new TempFolder();
        var vocabulary = ByteVocabulary("lo", "low", "er", "Ġlow", "<|endoftext|>"); // ids 256..260
        string dir = WriteBpeFolder(folder, vocabulary, "l o\nlo w\ne r\nĠ low\n");
        var tokenizer = TokenizerSpec.Parse("bpe:" + dir).Create();
        Assert.Equal(261, tokenizer.VocabularySize);

        // "lower" is one pre-token: l o w e r -> (l o) lo w e r -> (lo w) low e r -> (e r) low er = [257, 258];
        // " low" is the next: Ġ l o w -> Ġ lo w -> Ġ low -> (Ġ low) Ġlow = [259]; "x" has no merge: its byte, 120.
        Assert.Equal([257, 258, 259, 120], tokenizer.Encode("lower lowx"));
        Assert.Equal("lower lowx", tokenizer.Decode([257, 258, 259, 120]));
        // "  low": the first space alone (whitespace run before a word keeps its last space for the word).
        Assert.Equal([32, 259], tokenizer.Encode("  low"));
        // <|endoftext|> in the vocabulary is a special token, as in GPT-2.
        Assert.Equal([257, 260, 256], tokenizer.Encode("low<|endoftext|>lo"));
    }

    [Fact]
    public void ByteLevelVocabularyRoundTripsAnyUtf8()
    {
        using var folder = new TempFolder();
        var tokenizer = BytePairTokenizer.FromGpt2Files(WriteBpeFolder(folder, ByteVocabulary("Ġw"), "Ġ w\n"));

        Assert.Equal(257, tokenizer.VocabularySize);
        int[] ids = tokenizer.Encode(NonAscii);
        // One id per UTF-8 byte (the byte's own id): the single merge "Ġ w" applies nowhere in this text.
        Assert.Equal(Encoding.UTF8.GetBytes(NonAscii).Select(b => (int)b), ids);
        Assert.Equal(NonAscii, tokenizer.Decode(ids));
        Assert.Equal([104, 256, 104], tokenizer.Encode("h wh"));
    }

    [Fact]
    public void VocabularyWithoutEveryByteIsRejected()
    {
        using var folder = new TempFolder();
        var vocabulary = ByteVocabulary();
        vocabulary.Remove("Ġ");
        var e = Assert.Throws<InvalidDataException>(() => BytePairTokenizer.FromGpt2Files(WriteBpeFolder(folder, vocabulary, "")));
        Assert.Contains("vocab.json: lacks the byte symbol 'Ġ' (U+0120)", e.Message);
    }

    [Theory]
    [InlineData("byte", TokenizerKind.Byte, null)]
    [InlineData("cl100k", TokenizerKind.Cl100k, null)]
    [InlineData("bpe:/data/gpt2", TokenizerKind.Bpe, "/data/gpt2")]
    [InlineData("bpe:relative dir", TokenizerKind.Bpe, "relative dir")]
    public void SpecParsesAndPrintsBack(string text, TokenizerKind kind, string? folder)
    {
        var spec = TokenizerSpec.Parse(text);
        Assert.Equal(kind, spec.Kind);
        Assert.Equal(folder, spec.Folder);
        Assert.Equal(text, spec.ToString());
        Assert.Equal(spec, TokenizerSpec.Parse(spec.ToString()));
    }

    [Theory]
    [InlineData("", "unknown tokenizer ''")]
    [InlineData("Byte", "unknown tokenizer 'Byte': expected byte, cl100k or bpe:FOLDER")]
    [InlineData("gpt2", "unknown tokenizer 'gpt2'")]
    [InlineData("bpe:", "names no folder")]
    [InlineData("bpe:  ", "names no folder")]
    public void SpecRejectsUnknownText(string text, string message)
    {
        var e = Assert.Throws<FormatException>(() => TokenizerSpec.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void SpecCreatesTheNamedTokenizer()
    {
        Assert.Same(ByteTokenizer.Instance, TokenizerSpec.Byte.Create());
        Assert.Equal(100277, TokenizerSpec.Cl100k.Create().VocabularySize);
    }

    [Fact]
    public void MissingOrBrokenBpeFilesAreClearErrors()
    {
        using var folder = new TempFolder();
        string missing = Path.Combine(folder.Path, "nope");
        Assert.Contains($"'{missing}' does not exist", Assert.Throws<DirectoryNotFoundException>(() => TokenizerSpec.Bpe(missing).Create()).Message);

        File.WriteAllText(folder.File("only-vocab/vocab.json"), "{}");
        var noMerges = Assert.Throws<FileNotFoundException>(() => BytePairTokenizer.FromGpt2Files(Path.Combine(folder.Path, "only-vocab")));
        Assert.Contains("has no merges.txt", noMerges.Message);

        File.WriteAllText(folder.File("broken/vocab.json"), "{ not json");
        File.WriteAllText(folder.File("broken/merges.txt"), "#version: 0.2\n");
        var broken = Assert.Throws<InvalidDataException>(() => BytePairTokenizer.FromGpt2Files(Path.Combine(folder.Path, "broken")));
        Assert.StartsWith(Path.Combine(folder.Path, "broken", "vocab.json") + ": not valid JSON", broken.Message);

        var badMerge = Assert.Throws<InvalidDataException>(() => BytePairTokenizer.FromGpt2Files(WriteBpeFolder(folder, ByteVocabulary(), "l o\nlow\n")));
        Assert.EndsWith("merges.txt line 3: 'low' is not two tokens separated by one space", badMerge.Message);

        var unknownMerge = Assert.Throws<InvalidDataException>(() => BytePairTokenizer.FromGpt2Files(WriteBpeFolder(folder, ByteVocabulary(), "l o\n")));
        Assert.Contains("do not fit together", unknownMerge.Message); // "lo" is not in the vocabulary
    }
}
