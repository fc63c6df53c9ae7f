using System.Text;

namespace DeepScaleLM.Training.Data;

/// <summary>The default tokenizer: one token per byte of the text's UTF-8 encoding (vocabulary 256). Decoding a token
/// sequence that is not valid UTF-8 (a model's sample may cut a multi-byte character) gives U+FFFD for the bad bytes.</summary>
public sealed class ByteTokenizer : ITokenizer
{
    /// <summary>The one instance; the tokenizer has no state.</summary>
    public static ByteTokenizer Instance { get; } = new();

    /// <inheritdoc/>
    public int VocabularySize => 256;

    /// <inheritdoc/>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        var tokens = new int[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) tokens[i] = bytes[i];
        return tokens;
    }

    /// <inheritdoc/>
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var bytes = new byte[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] > 255) throw new ArgumentOutOfRangeException(nameof(tokens), $"token {tokens[i]} at position {i} is not a byte (0..255)");
            bytes[i] = (byte)tokens[i];
        }
        return Encoding.UTF8.GetString(bytes);
    }
}
