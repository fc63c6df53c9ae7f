namespace DeepScaleLM.Training.Data;

/// <summary>Turns text into token ids and back. The byte-level <see cref="ByteTokenizer"/> is the default; a BPE
/// tokenizer plugs in behind the same three members.</summary>
public interface ITokenizer
{
    /// <summary>Number of distinct token ids: every id is in [0, VocabularySize).</summary>
    int VocabularySize { get; }

    /// <summary>The token ids of <paramref name="text"/>.</summary>
    int[] Encode(string text);

    /// <summary>The text of <paramref name="tokens"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A token is outside [0, VocabularySize).</exception>
    string Decode(ReadOnlySpan<int> tokens);
}
