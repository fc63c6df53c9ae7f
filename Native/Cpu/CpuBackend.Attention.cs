using System.Numerics.Tensors;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    // Query rows per GEMM block under a causal mask. Block [i0, i1) only needs keys [0, i1), so the blocks skip the
    // masked upper triangle except inside each diagonal block (work T^2/2 * (1 + CausalBlock/T) instead of T^2),
    // while staying tall enough for the packed GEMM to run at speed.
    private const int CausalBlock = 32;

    // Backward workspaces, grow-only and owned by the backend (hence the lease: one op at a time per backend).
    // Scratch holds, per concurrently running part, dM = G V^T (overwritten by dS) [Tq, Tk] and the rescaled
    // gradient G [Tq, headDim]. Partials hold, per (batch, head), trace(dM) and sum(dM * P), summed into the shared
    // per-head mix gradients after the parallel loop in a fixed order.
    private float[] _attentionScratch = [];
    private float[] _attentionPartials = [];

    /// <inheritdoc/>
    protected override unsafe void AttentionCore(Tensor output, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        var job = new AttentionForwardJob { Head = new AttentionHeads(probabilities, query, key, value, options), Output = Floats(output) };
        ElementWise.ForEach(_pool, job.Head.Count, job);
    }

    /// <inheritdoc/>
    protected override unsafe void AttentionBackwardCore(Tensor? gradQuery, Tensor? gradKey, Tensor? gradValue, Tensor? gradMixAlpha, Tensor? gradMixBeta,
        Tensor gradOutput, Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
    {
        using var lease = LeaseWorkspaces(nameof(AttentionBackward));
        var heads = new AttentionHeads(probabilities, query, key, value, options);
        bool needScores = gradQuery is not null || gradKey is not null || gradMixAlpha is not null || gradMixBeta is not null;
        // Per part: dM [Tq, Tk] when scores are needed, G [Tq, headDim] when rescaled; rounded to a cache line so parts never share one.
        long stride = (needScores ? (long)heads.QueryTokens * heads.KeyTokens : 0) + (heads.Rescale is null ? 0 : (long)heads.QueryTokens * heads.HeadDim);
        stride = (stride + 15) & ~15L;
        int parts = AttentionScratchParts(_pool.ThreadCount, heads.Count, stride);
        if (_attentionScratch.Length < parts * stride) _attentionScratch = new float[checked((int)(parts * stride))];
        if (_attentionPartials.Length < 2 * heads.Count) _attentionPartials = new float[2 * heads.Count];

        fixed (float* scratch = _attentionScratch, partials = _attentionPartials)
        {
            var job = new AttentionBackwardJob
            {
                Head = heads,
                GradOutput = Floats(gradOutput),
                GradQuery = gradQuery is null ? null : Floats(gradQuery),
                GradKey = gradKey is null ? null : Floats(gradKey),
                GradValue = gradValue is null ? null : Floats(gradValue),
                NeedScores = needScores,
                Scratch = scratch,
                ScratchStride = stride,
                Partials = partials,
            };
            ElementWise.ForEach(_pool, parts, job);

            // dAlpha/dBeta are shared by every batch entry of a head: sum the per-(b, h) partials in batch order so
            // the result does not depend on which thread finished first.
            if (gradMixAlpha is null && gradMixBeta is null) return;
            for (int h = 0; h < heads.Heads; h++)
            {
                float trace = 0f, weighted = 0f;
                for (int i = h; i < heads.Count; i += heads.Heads)
                {
                    trace += partials[2 * i];
                    weighted += partials[2 * i + 1];
                }
                if (gradMixAlpha is not null) Floats(gradMixAlpha)[h] += trace;
                if (gradMixBeta is not null) Floats(gradMixBeta)[h] += weighted;
            }
        }
    }

    /// <summary>
    /// Parts of the backward (each with a scratch slice of <paramref name="stride"/> floats): one per thread, at most
    /// one per head, and no more than one array holds. Long sequences on many cores (T = 4096 on 128 threads needs
    /// 2^31 floats) then run on fewer threads instead of overflowing the workspace's size. Results do not depend on
    /// the part count.
    /// </summary>
    internal static int AttentionScratchParts(int threads, int heads, long stride) =>
        (int)Math.Max(1, Math.Min(Math.Min(threads, heads), Array.MaxLength / Math.Max(1, stride)));

    /// <summary>Geometry and operand addresses of one attention call, and where head (b, h) lives in each operand.</summary>
    private readonly unsafe struct AttentionHeads
    {
        public AttentionHeads(Tensor probabilities, Tensor query, Tensor key, Tensor value, AttentionOptions options)
        {
            Heads = options.Heads;
            Channels = query.Shape[2];
            HeadDim = Channels / Heads;
            QueryTokens = query.Shape[1];
            KeyTokens = key.Shape[1];
            Count = checked(query.Shape[0] * Heads);
            Scale = options.Scale ?? 1f / MathF.Sqrt(HeadDim);
            Causal = options.Causal;
            Query = Floats(query);
            Key = Floats(key);
            Value = Floats(value);
            Probabilities = Floats(probabilities);
            Bias = options.Bias is null ? null : Floats(options.Bias);
            Rescale = options.Rescale is null ? null : Floats(options.Rescale);
            MixAlpha = options.MixAlpha is null ? null : Floats(options.MixAlpha);
            MixBeta = options.MixBeta is null ? null : Floats(options.MixBeta);
        }

        public readonly int Heads, Channels, HeadDim, QueryTokens, KeyTokens, Count;
        public readonly float Scale;
        public readonly bool Causal;
        public readonly float* Query, Key, Value, Probabilities, Bias, Rescale, MixAlpha, MixBeta;

        /// <summary>Rows per block when walking <paramref name="rows"/> rows: see <see cref="CausalBlock"/>; one block without a mask.</summary>
        public int Block(int rows) => Causal ? CausalBlock : Math.Max(1, rows);

        /// <summary>Keys that query rows [.., end) can see.</summary>
        public int VisibleKeys(int end) => Causal ? end : KeyTokens;

        /// <summary>The first query row that can see key <paramref name="key"/> (P is 0 above the diagonal under the mask).</summary>
        public int FirstQuerySeeing(int key) => Causal ? key : 0;

        /// <summary>First element of head (b, h) = <paramref name="index"/> in a [batch, tokens, channels] tensor: a
        /// [tokens, headDim] matrix with row stride channels.</summary>
        public float* HeadOf(float* tensor, int index, int tokens) =>
            tensor + (long)(index / Heads) * tokens * Channels + (index % Heads) * HeadDim;

        /// <summary>The [Tq, Tk] probabilities of head (b, h) = <paramref name="index"/>.</summary>
        public float* ProbabilitiesOf(int index) => Probabilities + (long)index * QueryTokens * KeyTokens;

        /// <summary>The mix weights of head <paramref name="index"/> % heads: (alpha, beta), or (0, 1) for M = P.</summary>
        public (float Alpha, float Beta) Mix(int index) => MixAlpha is null ? (0f, 1f) : (MixAlpha[index % Heads], MixBeta[index % Heads]);
    }

    /// <summary>Forward of one (b, h) per index: S, softmax, M V, mix and rescale, block of query rows by block.</summary>
    private unsafe struct AttentionForwardJob : IVectorJob
    {
        public AttentionHeads Head;
        public float* Output;

        public readonly void Execute<TWidth, TFloat, TDouble>(int index) where TWidth : IWidth<TFloat, TDouble>
        {
            var g = Head;
            int tq = g.QueryTokens, tk = g.KeyTokens, c = g.Channels, d = g.HeadDim;
            float* q = g.HeadOf(g.Query, index, tq), k = g.HeadOf(g.Key, index, tk), v = g.HeadOf(g.Value, index, tk);
            float* o = g.HeadOf(Output, index, tq), p = g.ProbabilitiesOf(index);
            var (alpha, beta) = g.Mix(index);
            for (int i0 = 0; i0 < tq; i0 += g.Block(tq))
            {
                int i1 = Math.Min(i0 + g.Block(tq), tq), keys = g.VisibleKeys(i1);
                CpuGemm.MultiplySerial(false, true, i1 - i0, keys, d, g.Scale, q + (long)i0 * c, c, k, c, 0f, p + (long)i0 * tk, tk);
                for (int i = i0; i < i1; i++)
                {
                    float* row = p + (long)i * tk;
                    int visible = g.Causal ? i + 1 : tk;
                    RowKernels.Softmax<TWidth, TFloat, TDouble>(row, g.Bias is null ? null : g.Bias + (long)i * tk, visible);
                    new Span<float>(row + visible, tk - visible).Clear();
                }
                // (alpha I + beta P) V: beta folds into the GEMM, alpha V[i] is added per row (Tq == Tk with a mix).
                CpuGemm.MultiplySerial(false, false, i1 - i0, d, keys, beta, p + (long)i0 * tk, tk, v, c, 0f, o + (long)i0 * c, c);
                for (int i = i0; i < i1 && (g.MixAlpha is not null || g.Rescale is not null); i++)
                {
                    var row = new Span<float>(o + (long)i * c, d);
                    if (g.MixAlpha is not null) RowKernels.AddScaled<TWidth, TFloat, TDouble>(o + (long)i * c, v + (long)i * c, alpha, d);
                    if (g.Rescale is not null) TensorPrimitives.Multiply(row, g.Rescale[i], row);
                }
            }
        }
    }

    /// <summary>
    /// Backward over (b, h) heads. Each index is a part that owns one scratch slice and pulls heads from a shared
    /// counter until none are left (balanced even when a worker starts late); per-head results do not depend on
    /// which part computes them.
    /// </summary>
    private unsafe struct AttentionBackwardJob : IVectorJob
    {
        public AttentionHeads Head;
        public float* GradOutput, GradQuery, GradKey, GradValue, Scratch, Partials;
        public long ScratchStride;
        public bool NeedScores;
        // ElementWise.ForEach keeps the job in one place and the pool runs every part on it by reference, so all
        // parts share this one counter.
        private int _next;

        public void Execute<TWidth, TFloat, TDouble>(int part) where TWidth : IWidth<TFloat, TDouble>
        {
            float* scratch = Scratch + part * ScratchStride;
            int index;
            while ((index = Interlocked.Increment(ref _next) - 1) < Head.Count) BackwardHead<TWidth, TFloat, TDouble>(index, scratch);
        }

        private readonly void BackwardHead<TWidth, TFloat, TDouble>(int index, float* scratch) where TWidth : IWidth<TFloat, TDouble>
        {
            var g = Head;
            int tq = g.QueryTokens, tk = g.KeyTokens, c = g.Channels, d = g.HeadDim;
            float* q = g.HeadOf(g.Query, index, tq), k = g.HeadOf(g.Key, index, tk), v = g.HeadOf(g.Value, index, tk);
            float* p = g.ProbabilitiesOf(index), dOut = g.HeadOf(GradOutput, index, tq);
            var (alpha, beta) = g.Mix(index);

            // G = rescale * dOut, row-scaled: the gradient at M V.
            float* grad = dOut;
            int ldg = c;
            if (g.Rescale is not null)
            {
                grad = scratch + (NeedScores ? (long)tq * tk : 0);
                ldg = d;
                for (int i = 0; i < tq; i++)
                    TensorPrimitives.Multiply(new ReadOnlySpan<float>(dOut + (long)i * c, d), g.Rescale[i], new Span<float>(grad + (long)i * d, d));
            }

            // dV += M^T G = beta P^T G + alpha G. Under the mask P^T is upper triangular: key rows [j0, j1) see queries from j0 on.
            if (GradValue is not null)
            {
                float* dv = g.HeadOf(GradValue, index, tk);
                for (int j0 = 0; j0 < tk; j0 += g.Block(tk))
                {
                    int j1 = Math.Min(j0 + g.Block(tk), tk), first = g.FirstQuerySeeing(j0);
                    CpuGemm.MultiplySerial(true, false, j1 - j0, d, tq - first, beta, p + (long)first * tk + j0, tk, grad + (long)first * ldg, ldg, 1f, dv + (long)j0 * c, c);
                }
                for (int i = 0; i < tq && g.MixAlpha is not null; i++) RowKernels.AddScaled<TWidth, TFloat, TDouble>(dv + (long)i * c, grad + (long)i * ldg, alpha, d);
            }
            if (!NeedScores) return;

            // dM = G V^T; dAlpha = trace(dM), dBeta = sum(dM * P); then in place dS = scale * beta * P * (dM - rowsum(dM * P)),
            // the softmax backward with dP = beta dM and the score scale folded in for the dQ/dK GEMMs.
            float* ds = scratch;
            float* dq = GradQuery is null ? null : g.HeadOf(GradQuery, index, tq);
            float trace = 0f, weighted = 0f;
            for (int i0 = 0; i0 < tq; i0 += g.Block(tq))
            {
                int i1 = Math.Min(i0 + g.Block(tq), tq), keys = g.VisibleKeys(i1);
                CpuGemm.MultiplySerial(false, true, i1 - i0, keys, d, 1f, grad + (long)i0 * ldg, ldg, v, c, 0f, ds + (long)i0 * tk, tk);
                for (int i = i0; i < i1; i++)
                {
                    float* row = ds + (long)i * tk;
                    int visible = g.Causal ? i + 1 : tk;
                    if (g.MixAlpha is not null) trace += row[i];
                    weighted += RowKernels.SoftmaxBackward<TWidth, TFloat, TDouble>(row, p + (long)i * tk, visible, g.Scale * beta);
                    // The dQ/dK GEMMs read whole blocks; masked entries must hold 0, not dM.
                    new Span<float>(row + visible, tk - visible).Clear();
                }
                if (dq is not null)
                    CpuGemm.MultiplySerial(false, false, i1 - i0, d, keys, 1f, ds + (long)i0 * tk, tk, k, c, 1f, dq + (long)i0 * c, c);
            }
            Partials[2 * index] = trace;
            Partials[2 * index + 1] = weighted;

            // dK += dS^T Q, key rows [j0, j1) reading query rows from the first that sees j0.
            if (GradKey is null) return;
            float* dk = g.HeadOf(GradKey, index, tk);
            for (int j0 = 0; j0 < tk; j0 += g.Block(tk))
            {
                int j1 = Math.Min(j0 + g.Block(tk), tk), first = g.FirstQuerySeeing(j0);
                CpuGemm.MultiplySerial(true, false, j1 - j0, d, tq - first, 1f, ds + (long)first * tk + j0, tk, q + (long)first * c, c, 1f, dk + (long)j0 * c, c);
            }
        }
    }
}
