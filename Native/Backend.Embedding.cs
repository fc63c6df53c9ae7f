namespace DeepScaleLM.Native;

public abstract partial class Backend
{
    /// <summary><c>output[b, t] = tokenTable[tokens[b, t]] + positionTable[t]</c> (positions optional).</summary>
    /// <param name="output">[batch, tokens, channels].</param>
    /// <param name="tokens">[batch, tokens], Int32 ids in [0, vocabulary).</param>
    /// <param name="tokenTable">[vocabulary, channels].</param>
    /// <param name="positionTable">[maxTokens >= tokens, channels], or null.</param>
    /// <exception cref="ArgumentException">Shapes disagree, output overlaps a table, or a token id is outside the vocabulary.</exception>
    public void Embedding(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable)
    {
        Check.Operand(this, output, nameof(output));
        Check.Operand(this, tokens, nameof(tokens), DType.Int32);
        Check.Operand(this, tokenTable, nameof(tokenTable));
        Check.Optional(this, positionTable, nameof(positionTable));
        Check.Rank(tokens, nameof(tokens), 2, 2);
        Check.Rank(tokenTable, nameof(tokenTable), 2, 2);
        int batch = tokens.Shape[0], count = tokens.Shape[1], channels = tokenTable.Shape[1];
        CheckShape(output, nameof(output), tokens, nameof(tokens), tokenTable, nameof(tokenTable), batch, count, channels);
        Check.Disjoint(output, nameof(output), tokenTable, nameof(tokenTable));
        if (positionTable is not null)
        {
            CheckPositionTable(positionTable, nameof(positionTable), count, channels, tokens, nameof(tokens), tokenTable, nameof(tokenTable));
            Check.Disjoint(output, nameof(output), positionTable, nameof(positionTable));
        }
        CheckIndices(tokens, nameof(tokens), null, tokenTable, nameof(tokenTable), 0);
        EmbeddingCore(output, tokens, tokenTable, positionTable);
        KeepAlive(output, tokens, tokenTable, positionTable);
    }

    /// <summary>Scatter-add: <c>gradTokenTable[tokens[b, t]] += gradOutput[b, t]</c>, <c>gradPositionTable[t] += sum_b gradOutput[b, t]</c>.</summary>
    /// <param name="gradTokenTable">[vocabulary, channels], or null.</param>
    /// <param name="gradPositionTable">[maxTokens >= tokens, channels], or null.</param>
    /// <param name="gradOutput">[batch, tokens, channels].</param>
    /// <param name="tokens">[batch, tokens], Int32 ids in [0, vocabulary) (checked only when gradTokenTable is given).</param>
    /// <exception cref="ArgumentException">Shapes disagree, the tensors overlap, or a token id is outside the vocabulary.</exception>
    public void EmbeddingBackward(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens)
    {
        Check.Optional(this, gradTokenTable, nameof(gradTokenTable));
        Check.Optional(this, gradPositionTable, nameof(gradPositionTable));
        Check.Operand(this, gradOutput, nameof(gradOutput));
        Check.Operand(this, tokens, nameof(tokens), DType.Int32);
        Check.Rank(gradOutput, nameof(gradOutput), 3, 3);
        int batch = gradOutput.Shape[0], count = gradOutput.Shape[1], channels = gradOutput.Shape[2];
        CheckShape(tokens, nameof(tokens), gradOutput, nameof(gradOutput), null, null, batch, count);
        if (gradTokenTable is not null)
        {
            Check.Rank(gradTokenTable, nameof(gradTokenTable), 2, 2);
            CheckShape(gradTokenTable, nameof(gradTokenTable), gradOutput, nameof(gradOutput), null, null, gradTokenTable.Shape[0], channels);
            Check.Disjoint(gradTokenTable, nameof(gradTokenTable), gradOutput, nameof(gradOutput));
            CheckIndices(tokens, nameof(tokens), null, gradTokenTable, nameof(gradTokenTable), 0);
        }
        if (gradPositionTable is not null)
        {
            CheckPositionTable(gradPositionTable, nameof(gradPositionTable), count, channels, gradOutput, nameof(gradOutput), null, null);
            Check.Disjoint(gradPositionTable, nameof(gradPositionTable), gradOutput, nameof(gradOutput));
            if (gradTokenTable is not null)
                Check.Disjoint(gradPositionTable, nameof(gradPositionTable), gradTokenTable, nameof(gradTokenTable));
        }
        EmbeddingBackwardCore(gradTokenTable, gradPositionTable, gradOutput, tokens);
        KeepAlive(gradTokenTable, gradPositionTable, gradOutput, tokens);
    }

    /// <summary>Kernel of <see cref="Embedding"/>; operands already validated.</summary>
    protected abstract void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable);
    /// <summary>Kernel of <see cref="EmbeddingBackward"/>; operands already validated.</summary>
    protected abstract void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens);

    /// <summary>
    /// Kernel of the index checks (token ids, targets): the first element of the Int32 tensor
    /// <paramref name="indices"/> that lies outside [0, <paramref name="limit"/>) and is not
    /// <paramref name="allowed"/>, as its flat position and value; position -1 when every element is valid.
    /// Reading indices is the device's business, so each backend scans them itself.
    /// </summary>
    protected abstract (long Position, int Value) FindInvalidIndexCore(Tensor indices, int limit, int? allowed);

    /// <summary>
    /// Every element of <paramref name="indices"/> lies in [0, table.Shape[axis]) or equals <paramref name="allowed"/>;
    /// a bad one would read or write outside the table.
    /// </summary>
    private void CheckIndices(Tensor indices, string name, int? allowed, Tensor table, string tableName, int axis)
    {
        int limit = table.Shape[axis];
        var (position, value) = FindInvalidIndexCore(indices, limit, allowed);
        if (position >= 0)
            throw new ArgumentException(
                $"operand '{name}' {indices.Shape} holds {value} at flat index {position}, outside [0, {limit}) of '{tableName}' {table.Shape}"
                + (allowed is int a ? $" and not the ignore index {a}" : ""), name);
    }

    /// <summary>
    /// <see cref="Check.Shape"/> naming the operands the required shape came from; the message is formatted only on
    /// failure, so a valid call allocates nothing.
    /// </summary>
    private static void CheckShape(Tensor tensor, string name, Tensor source, string sourceName, Tensor? other, string? otherName, params ReadOnlySpan<int> expected)
    {
        Check.Shape(tensor, name, expected, $"{Context(source, sourceName, other, otherName)}");
    }

    private static string Context(Tensor source, string sourceName, Tensor? other, string? otherName) =>
        other is null ? $"{sourceName} {source.Shape}" : $"{sourceName} {source.Shape}, {otherName} {other.Shape}";

    /// <summary>A position table is [maxTokens, channels] with maxTokens at least the sequence length.</summary>
    private static void CheckPositionTable(Tensor table, string name, int tokens, int channels, Tensor source, string sourceName, Tensor? other, string? otherName)
    {
        Check.Rank(table, name, 2, 2);
        if (table.Shape[1] != channels || table.Shape[0] < tokens)
            throw new ArgumentException(
                $"operand '{name}' has shape {table.Shape} but [>= {tokens}, {channels}] is required ({Context(source, sourceName, other, otherName)})", name);
    }
}
