namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    // Vocabulary slices of the token-table gradient: thread (channel, slice) owns the table rows v with
    // v % slices == slice, so channels x slices threads work at once and each element still has one owner.
    private const int EmbeddingSlices = 64;

    /// <inheritdoc/>
    protected override void EmbeddingCore(Tensor output, Tensor tokens, Tensor tokenTable, Tensor? positionTable)
    {
        long rows = tokens.ElementCount;
        int channels = tokenTable.Shape[1];
        LaunchElements(_kernels.EmbeddingForward, rows * channels, new KernelArguments()
            .With(Pointer(output)).With(Pointer(tokens)).With(Pointer(tokenTable)).With(PointerOrNull(positionTable))
            .With(rows).With(tokens.Shape[1]).With(channels));
    }

    /// <inheritdoc/>
    protected override void EmbeddingBackwardCore(Tensor? gradTokenTable, Tensor? gradPositionTable, Tensor gradOutput, Tensor tokens)
    {
        int batch = gradOutput.Shape[0], count = gradOutput.Shape[1], channels = gradOutput.Shape[2];
        long rows = (long)batch * count;
        if (rows == 0 || channels == 0) return;
        if (gradTokenTable is not null)
        {
            int slices = Math.Min(EmbeddingSlices, gradTokenTable.Shape[0]);
            Launch(_kernels.EmbeddingBackwardTokens, (uint)((channels + 127) / 128), (uint)slices, 128, new KernelArguments()
                .With(Pointer(gradTokenTable)).With(Pointer(gradOutput)).With(Pointer(tokens)).With(rows).With(channels));
        }
        if (gradPositionTable is not null)
            LaunchElements(_kernels.EmbeddingBackwardPositions, (long)count * channels, new KernelArguments()
                .With(Pointer(gradPositionTable)).With(Pointer(gradOutput)).With(batch).With(count).With(channels));
    }

    /// <inheritdoc/>
    /// <remarks>The kernel takes the minimum position of the invalid entries (an atomic minimum: the same answer
    /// whatever the thread order); then the position, and the value there, are read back, which waits for the stream.</remarks>
    protected override unsafe (long Position, int Value) FindInvalidIndexCore(Tensor indices, int limit, int? allowed)
    {
        long count = indices.ElementCount;
        if (count == 0) return (-1, 0);
        Bind();
        ulong slot = _workspaces[3].Get(sizeof(ulong));
        MemsetWords(slot, uint.MaxValue, 2);
        LaunchElements(_kernels.FindInvalidIndex, count, new KernelArguments()
            .With(slot).With(Pointer(indices)).With(count).With(limit).With(allowed ?? 0).With(allowed is null ? 0 : 1));
        ulong position;
        CopyToHost(&position, slot, sizeof(ulong));
        if (position == ulong.MaxValue) return (-1, 0);
        int value;
        CopyToHost(&value, Offset(Pointer(indices), (long)position), sizeof(int));
        return ((long)position, value);
    }
}
