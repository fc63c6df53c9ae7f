namespace DeepScaleLM.Native.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc/>
    /// <remarks>
    /// Per batch entry b, one strided-batched GEMM over the heads: head h of a [batch, tokens, heads * headDim]
    /// operand is the [tokens, headDim] matrix at element (b tokens channels + h headDim) with row stride channels,
    /// so consecutive heads are headDim apart. S = scale Q K^T goes straight into probabilities, the softmax kernel
    /// turns it into P in place, and O = P V is followed by the mix / rescale epilogue.
    /// </remarks>
    protected override void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        var g = new AttentionGeometry(query, key, options);
        ulong q = Pointer(query), k = Pointer(key), v = Pointer(value), p = Pointer(probabilities), o = Pointer(output);
        for (int b = 0; b < g.Batch; b++)
            Gemm(false, true, g.QueryTokens, g.KeyTokens, g.HeadDim, g.Scale, g.Head(q, b, g.QueryTokens), g.Channels, g.HeadDim,
                g.Head(k, b, g.KeyTokens), g.Channels, g.HeadDim, 0f, g.Scores(p, b), g.KeyTokens, g.ScoreStride, g.Heads);
        if (g.Rows > 0)
            Launch(_kernels.AttentionSoftmax, (uint)g.Rows, 1, RowThreads(g.KeyTokens), new KernelArguments()
                .With(p).With(PointerOrNull(options.Bias)).With(g.QueryTokens).With(g.KeyTokens).With(options.Causal ? 1 : 0));
        for (int b = 0; b < g.Batch; b++)
            Gemm(false, false, g.QueryTokens, g.HeadDim, g.KeyTokens, 1f, g.Scores(p, b), g.KeyTokens, g.ScoreStride,
                g.Head(v, b, g.KeyTokens), g.Channels, g.HeadDim, 0f, g.Head(o, b, g.QueryTokens), g.Channels, g.HeadDim, g.Heads);
        if (options.MixAlpha is not null || options.Rescale is not null)
            LaunchElements(_kernels.AttentionMixRescale, output.ElementCount, new KernelArguments()
                .With(o).With(v).With(PointerOrNull(options.MixAlpha)).With(PointerOrNull(options.MixBeta)).With(PointerOrNull(options.Rescale))
                .With(output.ElementCount).With(g.QueryTokens).With(g.Heads).With(g.HeadDim));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// With G = rescale * gradOutput: gradValue += M^T G (= P^T G, or beta P^T G + alpha G with a mix); dM = G V^T;
    /// the softmax-backward kernel turns dM into dS = scale beta P (dM - rowsum(dM P)) in place and keeps each row's
    /// trace and weighted sums for the mix gradients; gradQuery += dS K and gradKey += dS^T Q. Workspaces: G
    /// [batch, queryTokens, channels], P^T G [batch, keyTokens, channels] (mix only), dM [batch, heads, queryTokens,
    /// keyTokens], and the per-row sums.
    /// </remarks>
    protected override void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        var g = new AttentionGeometry(query, key, options);
        ulong q = Pointer(query), k = Pointer(key), v = Pointer(value), p = Pointer(probabilities);
        bool mix = options.MixAlpha is not null;
        ulong grad = Pointer(gradOutput);
        if (options.Rescale is not null)
        {
            grad = _workspaces[0].Get(gradOutput.ElementCount * sizeof(float));
            LaunchElements(_kernels.AttentionScaleRows, gradOutput.ElementCount, new KernelArguments()
                .With(grad).With(Pointer(gradOutput)).With(Pointer(options.Rescale)).With(gradOutput.ElementCount).With(g.QueryTokens).With(g.Channels));
        }
        if (gradValue is not null)
        {
            // With a mix the per-head beta cannot ride on the GEMM's alpha: P^T G goes to a workspace first.
            ulong product = mix ? _workspaces[1].Get(value.ElementCount * sizeof(float)) : Pointer(gradValue);
            for (int b = 0; b < g.Batch; b++)
                Gemm(true, false, g.KeyTokens, g.HeadDim, g.QueryTokens, 1f, g.Scores(p, b), g.KeyTokens, g.ScoreStride,
                    g.Head(grad, b, g.QueryTokens), g.Channels, g.HeadDim, mix ? 0f : 1f, g.Head(product, b, g.KeyTokens), g.Channels, g.HeadDim, g.Heads);
            if (mix)
                LaunchElements(_kernels.AttentionValueMixGradient, value.ElementCount, new KernelArguments()
                    .With(Pointer(gradValue)).With(product).With(grad).With(Pointer(options.MixAlpha!)).With(Pointer(options.MixBeta!))
                    .With(value.ElementCount).With(g.Heads).With(g.HeadDim));
        }
        bool needScores = gradQuery is not null || gradKey is not null || gradMixAlpha is not null || gradMixBeta is not null;
        if (!needScores || g.Rows == 0) return;
        ulong scores = _workspaces[2].Get(probabilities.ElementCount * sizeof(float));
        for (int b = 0; b < g.Batch; b++)
            Gemm(false, true, g.QueryTokens, g.KeyTokens, g.HeadDim, 1f, g.Head(grad, b, g.QueryTokens), g.Channels, g.HeadDim,
                g.Head(v, b, g.KeyTokens), g.Channels, g.HeadDim, 0f, g.Scores(scores, b), g.KeyTokens, g.ScoreStride, g.Heads);
        ulong rowSums = _workspaces[3].Get(2 * g.Rows * sizeof(float));
        ulong traces = mix ? rowSums : 0, weighted = Offset(rowSums, g.Rows);
        Launch(_kernels.AttentionSoftmaxBackward, (uint)g.Rows, 1, RowThreads(g.KeyTokens), new KernelArguments()
            .With(scores).With(p).With(PointerOrNull(options.MixBeta)).With(traces).With(weighted).With(g.Heads).With(g.QueryTokens)
            .With(g.KeyTokens).With(options.Causal ? 1 : 0).With(g.Scale));
        if (gradMixAlpha is not null || gradMixBeta is not null)
            Launch(_kernels.AttentionMixGradient, (uint)((g.Heads + 31) / 32), 1, 32, new KernelArguments()
                .With(PointerOrNull(gradMixAlpha)).With(PointerOrNull(gradMixBeta)).With(traces).With(weighted).With(g.Batch).With(g.Heads).With(g.QueryTokens));
        if (gradQuery is not null)
            for (int b = 0; b < g.Batch; b++)
                Gemm(false, false, g.QueryTokens, g.HeadDim, g.KeyTokens, 1f, g.Scores(scores, b), g.KeyTokens, g.ScoreStride,
                    g.Head(k, b, g.KeyTokens), g.Channels, g.HeadDim, 1f, g.Head(Pointer(gradQuery), b, g.QueryTokens), g.Channels, g.HeadDim, g.Heads);
        if (gradKey is not null)
            for (int b = 0; b < g.Batch; b++)
                Gemm(true, false, g.KeyTokens, g.HeadDim, g.QueryTokens, 1f, g.Scores(scores, b), g.KeyTokens, g.ScoreStride,
                    g.Head(q, b, g.QueryTokens), g.Channels, g.HeadDim, 1f, g.Head(Pointer(gradKey), b, g.KeyTokens), g.Channels, g.HeadDim, g.Heads);
    }

    /// <summary>Sizes of one attention call and where batch entry b's heads start in each operand.</summary>
    private readonly struct AttentionGeometry
    {
        public AttentionGeometry(Tensor query, Tensor key, AttentionOptions options)
        {
            Batch = query.Shape[0];
            QueryTokens = query.Shape[1];
            KeyTokens = key.Shape[1];
            Channels = query.Shape[2];
            Heads = options.Heads;
            HeadDim = Channels / Heads;
            Scale = options.Scale ?? 1f / MathF.Sqrt(HeadDim);
        }

        public readonly int Batch, QueryTokens, KeyTokens, Channels, Heads, HeadDim;
        public readonly float Scale;

        /// <summary>Score rows in all: batch x heads x queryTokens.</summary>
        public long Rows => (long)Batch * Heads * QueryTokens;

        /// <summary>Elements between the [queryTokens, keyTokens] score matrices of consecutive heads.</summary>
        public long ScoreStride => (long)QueryTokens * KeyTokens;

        /// <summary>Head 0 of batch entry b in a [batch, tokens, channels] operand.</summary>
        public ulong Head(ulong tensor, int b, int tokens) => Offset(tensor, (long)b * tokens * Channels);

        /// <summary>Head 0's score matrix of batch entry b in a [batch, heads, queryTokens, keyTokens] tensor.</summary>
        public ulong Scores(ulong tensor, int b) => Offset(tensor, (long)b * Heads * ScoreStride);
    }
}
