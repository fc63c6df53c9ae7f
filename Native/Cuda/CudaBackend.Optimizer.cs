namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    // Blocks of the sum of squares' first pass: from the length only (deterministic), at most one partial per
    // 4 x 256 elements and never more than fit one block of the second pass comfortably.
    private const long MaxSquareBlocks = 1024;

    /// <inheritdoc/>
    protected override void AdamWCore(Tensor parameters, Tensor gradients, Tensor firstMoment, Tensor secondMoment, AdamWOptions options, int step, float gradientScale)
    {
        // The bias corrections in float64, rounded once, as the CPU backend forms them.
        float correction1 = (float)(1.0 / (1.0 - Math.Pow(options.Beta1, step)));
        float correction2 = (float)(1.0 / (1.0 - Math.Pow(options.Beta2, step)));
        LaunchElements(_kernels.AdamW, parameters.ElementCount, new KernelArguments()
            .With(Pointer(parameters)).With(Pointer(gradients)).With(Pointer(firstMoment)).With(Pointer(secondMoment)).With(parameters.ElementCount)
            .With(options.Beta1).With(options.Beta2).With(1f - options.Beta1).With(1f - options.Beta2).With(correction1).With(correction2)
            .With(options.Epsilon).With(options.LearningRate).With(options.WeightDecay).With(gradientScale));
    }

    /// <inheritdoc/>
    protected override unsafe double GlobalNormCore(ReadOnlySpan<Tensor> tensors)
    {
        Bind();
        ulong total = _workspaces[3].Get(sizeof(double));
        ulong partials = _workspaces[2].Get(MaxSquareBlocks * sizeof(double));
        MemsetWords(total, 0, 2);
        foreach (var tensor in tensors)
        {
            long count = tensor.ElementCount;
            if (count == 0) continue;
            uint blocks = (uint)Math.Clamp((count + 4 * ElementThreads - 1) / (4 * ElementThreads), 1, MaxSquareBlocks);
            Launch(_kernels.SumSquaresPartials, blocks, 1, ElementThreads, new KernelArguments().With(partials).With(Pointer(tensor)).With(count));
            Launch(_kernels.SumPartialsInto, 1, 1, ElementThreads, new KernelArguments().With(total).With(partials).With((int)blocks));
        }
        double sum;
        CopyToHost(&sum, total, sizeof(double));
        return Math.Sqrt(sum);
    }

    /// <inheritdoc/>
    /// <remarks>The kernels leave one mean per token and two centred sums per batch row (float64); the host
    /// finishes as the CPU backend does (see CpuBackend.MomentsCore for the algebra).</remarks>
    protected override unsafe MomentStatistics MomentsCore(Tensor activations)
    {
        int batch = activations.Shape[0], tokens = activations.Shape[1], channels = activations.Shape[2];
        ulong means = _workspaces[2].Get((long)tokens * sizeof(double));
        ulong partials = _workspaces[3].Get(2L * batch * sizeof(double));
        Launch(_kernels.TokenMeans, (uint)tokens, 1, ElementThreads, new KernelArguments()
            .With(means).With(Pointer(activations)).With(batch).With(tokens).With(channels));
        Launch(_kernels.CentredSums, (uint)batch, 1, RowThreads(channels), new KernelArguments()
            .With(partials).With(Pointer(activations)).With(means).With(tokens).With(channels));
        double[] host = HostDoubles(tokens + 2 * batch);
        fixed (double* h = host)
        {
            CopyToHost(h, means, (long)tokens * sizeof(double));
            CopyToHost(h + tokens, partials, 2L * batch * sizeof(double));
        }
        return MomentStatistics.FromCentredSums(host.AsSpan(0, tokens), host.AsSpan(tokens, 2 * batch), batch, channels);
    }
}
