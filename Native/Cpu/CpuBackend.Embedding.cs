using System.Numerics.Tensors;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    /// <summary>Channels per work item of the embedding backward: 256 bytes, four vectors, of every row.</summary>
    private const int EmbeddingChannelBlock = 64;

    /// <inheritdoc/>
    protected override unsafe void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable)
    {
        int rows = tokens.Shape[0] * tokens.Shape[1], channels = tokenTable.Shape[1];
        if (rows == 0 || channels == 0) return;
        int rowsPerItem = Math.Max(1, ElementWise.ChunkLength / channels);
        var job = new EmbeddingJob(Floats(output), (int*)Address(tokens), Floats(tokenTable),
            positionTable is null ? null : Floats(positionTable), rows, tokens.Shape[1], channels, rowsPerItem);
        _pool.For((rows + rowsPerItem - 1) / rowsPerItem, ref job);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Work items are blocks of channels, each walking every row in order, so each table element receives its
    /// additions in the same order for any thread count (tokens repeat, so splitting by rows would race).
    /// </remarks>
    protected override unsafe void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens)
    {
        int batch = gradOutput.Shape[0], count = gradOutput.Shape[1], channels = gradOutput.Shape[2];
        if (batch * count == 0 || channels == 0) return;
        var job = new EmbeddingBackwardJob(gradTokenTable is null ? null : Floats(gradTokenTable),
            gradPositionTable is null ? null : Floats(gradPositionTable), Floats(gradOutput), (int*)Address(tokens), batch, count, channels);
        _pool.For((channels + EmbeddingChannelBlock - 1) / EmbeddingChannelBlock, ref job);
    }

    /// <inheritdoc/>
    protected override unsafe (long Position, int Value) FindInvalidIndexCore(Tensor indices, int limit, int? allowed)
    {
        var values = new ReadOnlySpan<int>((int*)Address(indices), checked((int)indices.ElementCount));
        for (int i = 0; i < values.Length; i++)
        {
            // The runtime's vectorised search skips the valid run; only values outside [0, limit) stop it.
            int next = values[i..].IndexOfAnyExceptInRange(0, limit - 1);
            if (next < 0) break;
            i += next;
            if (values[i] != allowed) return (i, values[i]);
        }
        return (-1, 0);
    }

    private readonly unsafe struct EmbeddingJob(float* output, int* tokens, float* tokenTable, float* positionTable,
        int rows, int count, int channels, int rowsPerItem) : IParallelJob
    {
        public void Execute(int index)
        {
            int end = Math.Min(rows, (index + 1) * rowsPerItem);
            for (int r = index * rowsPerItem; r < end; r++)
            {
                var destination = new Span<float>(output + (long)r * channels, channels);
                var token = new ReadOnlySpan<float>(tokenTable + (long)tokens[r] * channels, channels);
                if (positionTable is null) token.CopyTo(destination);
                else TensorPrimitives.Add(token, new ReadOnlySpan<float>(positionTable + (long)(r % count) * channels, channels), destination);
            }
        }
    }

    private readonly unsafe struct EmbeddingBackwardJob(float* gradTokenTable, float* gradPositionTable, float* gradOutput, int* tokens,
        int batch, int count, int channels) : IParallelJob
    {
        public void Execute(int index)
        {
            int start = index * EmbeddingChannelBlock, width = Math.Min(EmbeddingChannelBlock, channels - start);
            int rows = batch * count;
            if (gradTokenTable is not null)
                for (int r = 0; r < rows; r++)
                    AddInto(gradTokenTable + (long)tokens[r] * channels + start, gradOutput + (long)r * channels + start, width);
            if (gradPositionTable is not null)
                for (int t = 0; t < count; t++)
                    for (int b = 0; b < batch; b++)
                        AddInto(gradPositionTable + (long)t * channels + start, gradOutput + ((long)b * count + t) * channels + start, width);
        }

        private static void AddInto(float* destination, float* source, int width)
        {
            var d = new Span<float>(destination, width);
            TensorPrimitives.Add(d, new ReadOnlySpan<float>(source, width), d);
        }
    }
}
