using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;

namespace DeepScaleLM.Training.Data;

/// <summary>
/// The binary token file: a 32-byte little-endian header, then the tokens.
/// <code>
/// offset size field
///      0    8 magic "DSLMTOK\0"
///      8    4 version (1)
///     12    4 token width in bytes: 1 when the vocabulary is at most 256, else 4
///     16    4 vocabulary size
///     20    4 reserved, 0
///     24    8 token count
///     32    . tokens: count * width bytes (unsigned bytes, or int32 little-endian)
/// </code>
/// </summary>
public static class TokenFile
{
    /// <summary>Header length in bytes.</summary>
    public const int HeaderBytes = 32;

    /// <summary>The format version this code writes and reads.</summary>
    public const int Version = 1;

    internal static ReadOnlySpan<byte> Magic => "DSLMTOK\0"u8;

    /// <summary>Whether <paramref name="path"/> starts with a token file's magic (a quick test to tell a token file from
    /// text; <see cref="Open"/> still validates the whole header).</summary>
    public static bool IsTokenFile(string path)
    {
        using var stream = File.OpenRead(path);
        Span<byte> start = stackalloc byte[Magic.Length];
        return stream.ReadAtLeast(start, start.Length, throwOnEndOfStream: false) == start.Length && start.SequenceEqual(Magic);
    }

    /// <summary>Token width in bytes for a vocabulary: 1 when every id fits a byte, else 4.</summary>
    public static int WidthFor(int vocabularySize) => vocabularySize <= 256 ? 1 : 4;

    /// <summary>Starts writing a token file; nothing appears at <paramref name="path"/> until <see cref="TokenFileWriter.Commit"/>.</summary>
    public static TokenFileWriter Create(string path, int vocabularySize) => new(path, vocabularySize);

    /// <summary>Memory-maps an existing token file for reading.</summary>
    /// <exception cref="IOException">The file is missing, truncated or corrupt; the message names the file and the problem.</exception>
    public static TokenFileReader Open(string path) => new(path);

    /// <summary>Writes <paramref name="tokens"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, int vocabularySize, ReadOnlySpan<int> tokens)
    {
        using var writer = Create(path, vocabularySize);
        writer.Append(tokens);
        writer.Commit();
    }
}

/// <summary>Writes a token file atomically: tokens go to a temporary file beside the target, which is flushed to disk
/// and renamed over the target by <see cref="Commit"/>. Disposing without committing deletes the temporary file.</summary>
public sealed class TokenFileWriter : IDisposable
{
    private readonly string path;
    private readonly string temporary;
    private readonly int vocabularySize;
    private readonly int width;
    private FileStream? stream;
    private long count;

    internal TokenFileWriter(string path, int vocabularySize)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabularySize, 1);
        this.path = Path.GetFullPath(path);
        this.vocabularySize = vocabularySize;
        width = TokenFile.WidthFor(vocabularySize);
        temporary = this.path + ".tmp-" + Environment.ProcessId + "-" + Guid.NewGuid().ToString("N")[..8];
        stream = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
        stream.Write(new byte[TokenFile.HeaderBytes]);
    }

    /// <summary>Tokens written so far.</summary>
    public long Count => count;

    /// <summary>Appends tokens.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A token is outside [0, vocabulary size).</exception>
    public void Append(ReadOnlySpan<int> tokens)
    {
        var s = stream ?? throw new InvalidOperationException($"token file '{path}' is already committed");
        Span<byte> buffer = stackalloc byte[4096];
        int tokensPerChunk = buffer.Length / width;
        for (int start = 0; start < tokens.Length; start += tokensPerChunk)
        {
            var chunk = tokens.Slice(start, Math.Min(tokensPerChunk, tokens.Length - start));
            for (int i = 0; i < chunk.Length; i++)
            {
                int token = chunk[i];
                if ((uint)token >= (uint)vocabularySize)
                    throw new ArgumentOutOfRangeException(nameof(tokens), $"token {token} at position {count + start + i} is outside the vocabulary of {vocabularySize}");
                if (width == 1) buffer[i] = (byte)token;
                else BinaryPrimitives.WriteInt32LittleEndian(buffer[(4 * i)..], token);
            }
            s.Write(buffer[..(chunk.Length * width)]);
        }
        count += tokens.Length;
    }

    /// <summary>Writes the header, flushes to disk and renames the file into place; returns the token count.</summary>
    public long Commit()
    {
        var s = stream ?? throw new InvalidOperationException($"token file '{path}' is already committed");
        Span<byte> header = stackalloc byte[TokenFile.HeaderBytes];
        header.Clear();
        TokenFile.Magic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], TokenFile.Version);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], width);
        BinaryPrimitives.WriteInt32LittleEndian(header[16..], vocabularySize);
        BinaryPrimitives.WriteInt64LittleEndian(header[24..], count);
        s.Position = 0;
        s.Write(header);
        s.Flush(flushToDisk: true);
        s.Dispose();
        stream = null;
        File.Move(temporary, path, overwrite: true);
        return count;
    }

    /// <summary>Deletes the temporary file if <see cref="Commit"/> was not called.</summary>
    public void Dispose()
    {
        if (stream is null) return;
        stream.Dispose();
        stream = null;
        try { File.Delete(temporary); } catch (IOException) { }
    }
}

/// <summary>A token file mapped into memory: tokens are read from the page cache on demand, so a file larger than
/// memory works. The header and the file length are checked when it is opened; token ids of 4-byte files are
/// checked against the vocabulary as they are read.</summary>
public sealed unsafe class TokenFileReader : IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private byte* data;

    internal TokenFileReader(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        FilePath = path;
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"cannot open token file '{path}': {e.Message}", e);
        }
        long length = stream.Length;
        Span<byte> header = stackalloc byte[TokenFile.HeaderBytes];
        if (length < TokenFile.HeaderBytes)
        {
            stream.Dispose();
            throw new IOException($"token file '{path}' is truncated: {length} bytes, shorter than the {TokenFile.HeaderBytes}-byte header");
        }
        stream.ReadExactly(header);
        string? problem = CheckHeader(header, length, out int width, out int vocabulary, out long count);
        if (problem is not null)
        {
            stream.Dispose();
            throw new IOException($"token file '{path}' is corrupt or truncated: {problem}");
        }
        Width = width;
        VocabularySize = vocabulary;
        Count = count;
        map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref data);
        data += view.PointerOffset + TokenFile.HeaderBytes;
    }

    private static string? CheckHeader(ReadOnlySpan<byte> header, long length, out int width, out int vocabulary, out long count)
    {
        width = BinaryPrimitives.ReadInt32LittleEndian(header[12..]);
        vocabulary = BinaryPrimitives.ReadInt32LittleEndian(header[16..]);
        count = BinaryPrimitives.ReadInt64LittleEndian(header[24..]);
        if (!header[..8].SequenceEqual(TokenFile.Magic)) return "bad magic (not a DSLM token file)";
        int version = BinaryPrimitives.ReadInt32LittleEndian(header[8..]);
        if (version != TokenFile.Version) return $"unsupported version {version} (this build reads {TokenFile.Version})";
        if (vocabulary < 1) return $"vocabulary size {vocabulary} is not positive";
        if (width != TokenFile.WidthFor(vocabulary)) return $"token width {width} does not match vocabulary size {vocabulary} (expected {TokenFile.WidthFor(vocabulary)})";
        if (count < 0 || count > (long.MaxValue - TokenFile.HeaderBytes) / width) return $"token count {count} is impossible";
        long expected = TokenFile.HeaderBytes + count * width;
        if (length < expected) return $"truncated: header says {count} tokens ({expected} bytes) but the file has {length} bytes";
        if (length > expected) return $"{length - expected} trailing bytes after the {count} tokens the header declares";
        return null;
    }

    /// <summary>The file this reader maps.</summary>
    public string FilePath { get; }

    /// <summary>Token width in bytes (1 or 4).</summary>
    public int Width { get; }

    /// <summary>Vocabulary size recorded in the header.</summary>
    public int VocabularySize { get; }

    /// <summary>Number of tokens.</summary>
    public long Count { get; }

    /// <summary>Copies tokens [<paramref name="start"/>, start + destination.Length) into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is outside the file.</exception>
    /// <exception cref="IOException">A stored token is outside the vocabulary.</exception>
    public void Read(long start, Span<int> destination)
    {
        ObjectDisposedException.ThrowIf(data == null, this);
        if (start < 0 || start > Count - destination.Length)
            throw new ArgumentOutOfRangeException(nameof(start), $"tokens [{start}, {start + destination.Length}) are outside the {Count} tokens of '{FilePath}'");
        if (Width == 1)
        {
            var source = new ReadOnlySpan<byte>(data + start, destination.Length);
            for (int i = 0; i < source.Length; i++) destination[i] = source[i];
            return;
        }
        byte* p = data + start * 4;
        for (int i = 0; i < destination.Length; i++)
        {
            int token = BinaryPrimitives.ReadInt32LittleEndian(new ReadOnlySpan<byte>(p + 4 * i, 4));
            if ((uint)token >= (uint)VocabularySize)
                throw new IOException($"token file '{FilePath}' is corrupt: token {token} at position {start + i} is outside the vocabulary of {VocabularySize}");
            destination[i] = token;
        }
    }

    /// <summary>Every token, copied into a new array (for small files and tests).</summary>
    public int[] ReadAll()
    {
        if (Count > Array.MaxLength) throw new InvalidOperationException($"token file '{FilePath}' has {Count} tokens, too many for one array");
        var tokens = new int[Count];
        Read(0, tokens);
        return tokens;
    }

    /// <summary>Unmaps the file.</summary>
    public void Dispose()
    {
        if (data == null) return;
        data = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
