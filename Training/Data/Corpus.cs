using System.Text;

namespace DeepScaleLM.Training.Data;

/// <summary>
/// Text input: one UTF-8 file, or a folder whose files (recursively) are read in ordinal order of their relative
/// paths with '/' separators, so the token stream is the same on every machine. Input must be valid UTF-8: an invalid
/// byte is an error naming the file and the byte offset (never silently replaced, so a Latin-1 file is noticed). A
/// leading UTF-8 byte order mark is skipped. In a folder, a newline is added after a file that does not end with one.
/// Each file is read whole, so one file must fit in memory; the token file written from them need not.
/// </summary>
public static class Corpus
{
    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The files of <paramref name="path"/> in reading order: the file itself, or a folder's files sorted ordinally by relative path.</summary>
    /// <exception cref="FileNotFoundException">The path does not exist.</exception>
    /// <exception cref="IOException">The folder holds no files.</exception>
    public static IReadOnlyList<string> Files(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new FileNotFoundException($"corpus '{path}' does not exist", path);
        var files = Directory.GetFiles(path, "*", SearchOption.AllDirectories)
            .Select(f => (Relative: Path.GetRelativePath(path, f).Replace('\\', '/'), Full: f))
            .OrderBy(f => f.Relative, StringComparer.Ordinal)
            .Select(f => f.Full)
            .ToArray();
        if (files.Length == 0) throw new IOException($"corpus folder '{path}' holds no files");
        return files;
    }

    /// <summary>The text of one UTF-8 file.</summary>
    /// <exception cref="IOException">The file is missing, unreadable, empty, or not valid UTF-8 (the message gives the byte offset).</exception>
    public static string ReadFile(string file)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(file); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot read corpus file '{file}': {e.Message}", e);
        }
        if (bytes.Length == 0) throw new IOException($"corpus file '{file}' is empty");
        int offset = FirstInvalidUtf8(bytes);
        if (offset >= 0) throw new IOException($"corpus file '{file}' is not valid UTF-8: invalid byte 0x{bytes[offset]:X2} at byte offset {offset}");
        int start = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        return Strict.GetString(bytes, start, bytes.Length - start);
    }

    /// <summary>The whole text of <paramref name="path"/> (a file or a folder), in reading order.</summary>
    public static IEnumerable<string> ReadTexts(string path)
    {
        var files = Files(path);
        foreach (var file in files)
        {
            string text = ReadFile(file);
            yield return files.Count > 1 && !text.EndsWith('\n') ? text + "\n" : text;
        }
    }

    /// <summary>Tokenizes <paramref name="path"/> with <paramref name="tokenizer"/> into the token file <paramref name="output"/>; returns the token count.</summary>
    public static long Tokenize(string path, ITokenizer tokenizer, string output)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        using var writer = TokenFile.Create(output, tokenizer.VocabularySize);
        foreach (var text in ReadTexts(path)) writer.Append(tokenizer.Encode(text));
        return writer.Commit();
    }

    /// <summary>Byte offset of the first byte that does not start or continue a valid UTF-8 sequence; -1 when all are valid.</summary>
    internal static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes)) return -1;
        int i = 0;
        while (i < bytes.Length)
        {
            if (System.Buffers.OperationStatus.Done != Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed)) return i;
            i += consumed;
        }
        return -1;
    }
}
