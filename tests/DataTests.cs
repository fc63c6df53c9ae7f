using System.Buffers.Binary;
using System.Text;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Tests;

/// <summary>Training data: tokenizer, corpus reading, the token file, the split and the batch sampler.</summary>
public sealed class DataTests
{
    [Fact]
    public void ByteTokenizerRoundTripsMultiByteUtf8()
    {
        const string text = "héllo ✓ 𝄞\n";
        var tokens = ByteTokenizer.Instance.Encode(text);
        Assert.Equal(Encoding.UTF8.GetByteCount(text), tokens.Length);
        Assert.Equal([(int)'h', 0xC3, 0xA9], tokens[..3]);
        Assert.Equal(text, ByteTokenizer.Instance.Decode(tokens));
        Assert.Equal(256, ByteTokenizer.Instance.VocabularySize);
    }

    [Fact]
    public void ByteTokenizerRejectsTokensThatAreNotBytes()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ByteTokenizer.Instance.Decode([65, 256]));
        Assert.Contains("256", e.Message);
    }

    [Fact]
    public void FolderFilesAreReadInOrdinalOrderOfRelativePaths()
    {
        using var folder = new TempFolder();
        foreach (var name in new[] { "b.txt", "a/z.txt", "B.txt", "a.txt" }) File.WriteAllText(folder.File(name), name);
        var order = Corpus.Files(folder.Path).Select(f => Path.GetRelativePath(folder.Path, f).Replace('\\', '/'));
        Assert.Equal(["B.txt", "a.txt", "a/z.txt", "b.txt"], order);
        Assert.Equal(["B.txt\n", "a.txt\n", "a/z.txt\n", "b.txt\n"], Corpus.ReadTexts(folder.Path));
    }

    [Fact]
    public void InvalidUtf8IsRejectedWithFileAndByteOffset()
    {
        using var folder = new TempFolder();
        string file = folder.File("latin1.txt");
        File.WriteAllBytes(file, [(byte)'a', (byte)'b', 0xE9, (byte)'c']);
        var e = Assert.Throws<IOException>(() => Corpus.ReadFile(file));
        Assert.Contains(file, e.Message);
        Assert.Contains("byte offset 2", e.Message);
    }

    [Fact]
    public void MissingEmptyAndFilelessInputsAreErrorsNamingThePath()
    {
        using var folder = new TempFolder();
        string missing = Path.Combine(folder.Path, "nope.txt");
        Assert.Contains(missing, Assert.Throws<FileNotFoundException>(() => Corpus.Files(missing)).Message);
        Assert.Contains(folder.Path, Assert.Throws<IOException>(() => Corpus.Files(folder.Path)).Message);
        string empty = folder.File("empty.txt");
        File.WriteAllBytes(empty, []);
        var e = Assert.Throws<IOException>(() => Corpus.ReadFile(empty));
        Assert.Contains(empty, e.Message);
        Assert.Contains("empty", e.Message);
    }

    [Fact]
    public void ByteOrderMarkIsSkipped()
    {
        using var folder = new TempFolder();
        string file = folder.File("bom.txt");
        File.WriteAllBytes(file, [0xEF, 0xBB, 0xBF, (byte)'x']);
        Assert.Equal("x", Corpus.ReadFile(file));
    }

    [Theory]
    [InlineData(256, 1)]
    [InlineData(50_000, 4)]
    public void TokenFileRoundTripsThroughTheMemoryMappedReader(int vocabulary, int width)
    {
        using var folder = new TempFolder();
        string path = folder.File("t.tokens");
        var random = new Random(7);
        var tokens = Enumerable.Range(0, 10_000).Select(_ => random.Next(vocabulary)).ToArray();
        TokenFile.Write(path, vocabulary, tokens);
        Assert.Equal(TokenFile.HeaderBytes + tokens.Length * width, new FileInfo(path).Length);
        using var reader = TokenFile.Open(path);
        Assert.Equal((reader.Count, reader.Width, reader.VocabularySize), (tokens.Length, width, vocabulary));
        Assert.Equal(tokens, reader.ReadAll());
        var middle = new int[100];
        reader.Read(4321, middle);
        Assert.Equal(tokens[4321..4421], middle);
        Assert.Throws<ArgumentOutOfRangeException>(() => reader.Read(tokens.Length - 5, new int[6]));
    }

    [Fact]
    public void CorpusFolderTokenizesIntoATokenFile()
    {
        using var folder = new TempFolder();
        File.WriteAllText(folder.File("in/1.txt"), "ab");
        File.WriteAllText(folder.File("in/2.txt"), "é\n");
        string output = folder.File("out.tokens");
        // "ab" gains a newline between files; é is two bytes.
        Assert.Equal(6, Corpus.Tokenize(Path.Combine(folder.Path, "in"), ByteTokenizer.Instance, output));
        using var reader = TokenFile.Open(output);
        Assert.Equal("ab\né\n", ByteTokenizer.Instance.Decode(reader.ReadAll()));
    }

    /// <summary>A damaged token file: how to damage a valid 4-token byte file, and a word the error must contain.</summary>
    public static TheoryData<string, string> Damage => new()
    {
        { "short-header", "shorter than the 32-byte header" },
        { "magic", "bad magic" },
        { "version", "unsupported version 9" },
        { "width", "token width 4 does not match" },
        { "truncated", "truncated: header says 4 tokens" },
        { "trailing", "1 trailing bytes" },
    };

    [Theory]
    [MemberData(nameof(Damage))]
    public void CorruptOrTruncatedTokenFilesAreRejectedWithFileAndReason(string damage, string reason)
    {
        using var folder = new TempFolder();
        string path = folder.File("bad.tokens");
        TokenFile.Write(path, 256, [1, 2, 3, 4]);
        var bytes = File.ReadAllBytes(path).ToList();
        switch (damage)
        {
            case "short-header": bytes = bytes[..10]; break;
            case "magic": bytes[0] = (byte)'X'; break;
            case "version": bytes[8] = 9; break;
            case "width": bytes[12] = 4; break;
            case "truncated": bytes.RemoveAt(bytes.Count - 1); break;
            case "trailing": bytes.Add(0); break;
        }
        File.WriteAllBytes(path, bytes.ToArray());
        var e = Assert.Throws<IOException>(() => TokenFile.Open(path).Dispose());
        Assert.Contains(path, e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void WideTokenOutsideTheVocabularyIsReportedOnRead()
    {
        using var folder = new TempFolder();
        string path = folder.File("wide.tokens");
        TokenFile.Write(path, 1000, [1, 2, 3]);
        var bytes = File.ReadAllBytes(path);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(TokenFile.HeaderBytes + 4), 5000);
        File.WriteAllBytes(path, bytes);
        using var reader = TokenFile.Open(path);
        var e = Assert.Throws<IOException>(() => reader.ReadAll());
        Assert.Contains(path, e.Message);
        Assert.Contains("token 5000 at position 1", e.Message);
    }

    [Fact]
    public void UncommittedWriterLeavesTheOldFileIntactAndNoTemporaryBehind()
    {
        using var folder = new TempFolder();
        string path = folder.File("keep.tokens");
        TokenFile.Write(path, 256, [9, 9]);
        using (var writer = TokenFile.Create(path, 256)) writer.Append([1, 2, 3]);
        using (var reader = TokenFile.Open(path)) Assert.Equal([9, 9], reader.ReadAll());
        Assert.Equal(["keep.tokens"], Directory.GetFiles(folder.Path).Select(Path.GetFileName));
        using var outOfRange = TokenFile.Create(path, 256);
        Assert.Throws<ArgumentOutOfRangeException>(() => outOfRange.Append([300]));
    }

    [Fact]
    public void SplitTakesTheTailForValidation()
    {
        Assert.Equal(new DataSplit(new TokenRange(0, 900), new TokenRange(900, 100)), DataSplit.Of(1000, 0.1));
        Assert.Equal(new DataSplit(new TokenRange(0, 4), new TokenRange(4, 3)), DataSplit.Of(7, 0.5));
        Assert.Equal(DataSplit.Of(12345, 0.05), DataSplit.Of(12345, 0.05));
        Assert.Equal(new TokenRange(10, 0), DataSplit.Of(10, 0).Validation);
        Assert.Throws<ArgumentOutOfRangeException>(() => DataSplit.Of(10, 1));
        Assert.Throws<ArgumentException>(() => DataSplit.Of(0, 0.1));
    }

    [Fact]
    public void SamplerGivesTheSameWindowsForTheSameSeedAndStep()
    {
        using var folder = new TempFolder();
        string path = folder.File("seq.tokens");
        const int count = 5000, context = 16, batch = 8;
        TokenFile.Write(path, count, Enumerable.Range(0, count).ToArray()); // token i is i: a window shows its offset
        using var reader = TokenFile.Open(path);
        var split = DataSplit.Of(count, 0.2);
        var first = new BatchSampler(reader, split.Train, batch, context, seed: 42);
        var again = new BatchSampler(reader, split.Train, batch, context, seed: 42);
        Assert.Equal(first.Sample(3), again.Sample(3));
        Assert.Equal(first.Sample(1_000_000), again.Sample(1_000_000));
        Assert.NotEqual(first.Sample(3), first.Sample(4));
        Assert.NotEqual(first.Sample(3), new BatchSampler(reader, split.Train, batch, context, seed: 43).Sample(3));

        var validation = new BatchSampler(reader, split.Validation, batch, context, seed: 42);
        foreach (var (sampler, range) in new[] { (first, split.Train), (validation, split.Validation) })
        {
            for (int step = 0; step < 50; step++)
            {
                var windows = sampler.Sample(step);
                for (int row = 0; row < batch; row++)
                {
                    var window = windows.AsSpan(row * (context + 1), context + 1);
                    Assert.True(window[0] >= range.Start && window[context] < range.Start + range.Count, $"window at {window[0]} leaves {range}");
                    for (int i = 1; i <= context; i++) Assert.Equal(window[0] + i, window[i]);
                }
            }
        }
    }

    [Fact]
    public void SamplerRejectsARangeShorterThanOneWindow()
    {
        using var folder = new TempFolder();
        string path = folder.File("short.tokens");
        TokenFile.Write(path, 256, new int[16]);
        using var reader = TokenFile.Open(path);
        Assert.Contains("fewer than one window", Assert.Throws<ArgumentException>(() => new BatchSampler(reader, new TokenRange(0, 16), 1, 16, 0)).Message);
        Assert.NotNull(new BatchSampler(reader, new TokenRange(0, 16), 1, 15, 0).Sample(0));
    }
}
