namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary><c>output[b, t] = tokenTable[tokens[b, t]] + positionTable[t]</c> (positions optional).</summary>
    /// <param name="output">[batch, tokens, channels].</param>
    /// <param name="tokens">[batch, tokens], Int32 ids in [0, vocabulary).</param>
    /// <param name="tokenTable">[vocabulary, channels].</param>
    /// <param name="positionTable">[maxTokens >= tokens, channels], or null.</param>
    /// <exception cref="ArgumentException">Shapes disagree, or a token id is outside the vocabulary.</exception>
    public void Embedding(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable)
    {
        EmbeddingCore(output, tokens, tokenTable, positionTable);
    }

    /// <summary>Scatter-add: <c>gradTokenTable[tokens[b, t]] += gradOutput[b, t]</c>, <c>gradPositionTable[t] += sum_b gradOutput[b, t]</c>.</summary>
    public void EmbeddingBackward(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens)
    {
        EmbeddingBackwardCore(gradTokenTable, gradPositionTable, gradOutput, tokens);
    }

    /// <summary>Kernel of <see cref="Embedding"/>; operands already validated.</summary>
    protected abstract void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable);
    /// <summary>Kernel of <see cref="EmbeddingBackward"/>; operands already validated.</summary>
    protected abstract void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens);
}
