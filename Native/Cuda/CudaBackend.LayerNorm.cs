namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    // Row chunks of the layer-norm backward (one block each): a function of the shape only, so the weight/bias
    // gradient partials, and their fixed-order sum, repeat bit for bit. Very wide rows get fewer chunks.
    private const int MaxRowChunks = 512;
    private const long MaxPartialFloats = 1L << 24;

    /// <inheritdoc/>
    protected override void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
        float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon)
    {
        int channels = x.Shape[-1];
        long rows = x.ElementCount / channels;
        if (rows == 0) return;
        Launch(_kernels.ResidualLayerNormForward, (uint)rows, 1, RowThreads(channels), new KernelArguments()
            .With(PointerOrNull(residualOutput)).With(Pointer(normOutput)).With(Pointer(mean)).With(Pointer(rstd)).With(Pointer(x))
            .With(PointerOrNull(branch)).With(lambda).With(beta).With(PointerOrNull(weight)).With(PointerOrNull(bias)).With(epsilon).With(channels));
    }

    /// <inheritdoc/>
    protected override void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput,
        Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch)
    {
        int channels = normInput.Shape[-1];
        int rows = (int)(normInput.ElementCount / channels);
        if (rows == 0) return;
        int chunks = (int)Math.Min(rows, Math.Clamp(MaxPartialFloats / (2L * channels), 1, MaxRowChunks));
        bool affine = gradWeight is not null || gradBias is not null;
        ulong partials = affine ? _workspaces[0].Get(2L * chunks * channels * sizeof(float)) : 0;
        // Without a branch the norm read x itself: s = x, so ds flows to x unscaled.
        Launch(_kernels.ResidualLayerNormBackward, (uint)chunks, 1, RowThreads(channels), new KernelArguments()
            .With(PointerOrNull(gradX)).With(PointerOrNull(gradBranch)).With(partials).With(Pointer(gradNormOutput)).With(PointerOrNull(gradResidualOutput))
            .With(Pointer(normInput)).With(Pointer(mean)).With(Pointer(rstd)).With(PointerOrNull(weight)).With(hasBranch ? lambda : 1f).With(beta)
            .With(rows).With(channels));
        if (affine) AccumulateColumnSums(PointerOrNull(gradWeight), PointerOrNull(gradBias), channels, partials, chunks, 2 * channels);
    }

    /// <summary>
    /// For each column of the [chunks, columns] partials: their sum in chunk order, added to
    /// <paramref name="first"/>[c] for c &lt; split and to <paramref name="second"/>[c - split] after (0: skipped).
    /// </summary>
    private void AccumulateColumnSums(ulong first, ulong second, int split, ulong partials, int chunks, int columns) =>
        Launch(_kernels.ColumnSumsAccumulate, (uint)((columns + ElementThreads - 1) / ElementThreads), 1, ElementThreads, new KernelArguments()
            .With(first).With(second).With(split).With(partials).With(chunks).With(columns));
}
