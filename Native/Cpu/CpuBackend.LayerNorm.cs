using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

namespace DeepScaleLM.Native.Cpu;

public sealed partial class CpuBackend
{
    // Rows split into at most this many chunks. The count depends on the shape only, never on the thread count, so
    // the per-chunk weight/bias gradient partials and their fixed-order sum give the same bits for any thread count.
    private const int MaxRowChunks = 64;
    // Cap on the partials (chunks * 2 * channels floats): very wide rows get fewer chunks instead of a huge workspace.
    private const int MaxPartialFloats = 1 << 21;

    // Backward workspace, grow-only and owned by the backend (hence the lease): per row chunk, the partial
    // gradWeight [channels] then gradBias [channels].
    private float[] _layerNormPartials = [];

    /// <inheritdoc/>
    protected override unsafe void ResidualLayerNormCore(Tensor? residualOutput, Tensor normOutput, Tensor mean, Tensor rstd, Tensor x, Tensor? branch,
        float lambda, float beta, Tensor? weight, Tensor? bias, float epsilon)
    {
        var job = new LayerNormForwardJob
        {
            Rows = new RowChunks(x),
            X = Floats(x),
            Branch = branch is null ? null : Floats(branch),
            Residual = residualOutput is null ? null : Floats(residualOutput),
            Output = Floats(normOutput),
            Mean = Floats(mean),
            Rstd = Floats(rstd),
            Weight = weight is null ? null : Floats(weight),
            Bias = bias is null ? null : Floats(bias),
            Lambda = lambda,
            Beta = beta,
            Epsilon = epsilon,
        };
        ElementWise.ForEach(_pool, job.Rows.Count, job);
    }

    /// <inheritdoc/>
    protected override unsafe void ResidualLayerNormBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor? gradWeight, Tensor? gradBias, Tensor gradNormOutput,
        Tensor? gradResidualOutput, Tensor normInput, Tensor mean, Tensor rstd, Tensor? weight, float lambda, float beta, bool hasBranch)
    {
        using var lease = LeaseWorkspaces(nameof(ResidualLayerNormBackward));
        var rows = new RowChunks(normInput);
        bool affine = gradWeight is not null || gradBias is not null;
        if (affine && _layerNormPartials.Length < 2L * rows.Count * rows.Channels)
            _layerNormPartials = new float[2 * rows.Count * rows.Channels];
        fixed (float* partials = _layerNormPartials)
        {
            var job = new LayerNormBackwardJob
            {
                Rows = rows,
                GradX = gradX is null ? null : Floats(gradX),
                GradBranch = gradBranch is null ? null : Floats(gradBranch),
                GradNormOutput = Floats(gradNormOutput),
                GradResidual = gradResidualOutput is null ? null : Floats(gradResidualOutput),
                Input = Floats(normInput),
                Mean = Floats(mean),
                Rstd = Floats(rstd),
                Weight = weight is null ? null : Floats(weight),
                Partials = affine ? partials : null,
                // Without a branch the norm read x itself: s = x, so ds flows to x unscaled.
                LambdaX = hasBranch ? lambda : 1f,
                Beta = beta,
            };
            ElementWise.ForEach(_pool, rows.Count, job);
            if (!affine || rows.Count == 0) return;

            // Sum the chunk partials in chunk order (deterministic), then accumulate into the gradients.
            int c = rows.Channels;
            var total = new Span<float>(partials, 2 * c);
            for (int chunk = 1; chunk < rows.Count; chunk++)
                TensorPrimitives.Add(total, new ReadOnlySpan<float>(partials + 2L * chunk * c, 2 * c), total);
            if (gradWeight is not null) TensorPrimitives.Add(new Span<float>(Floats(gradWeight), c), total[..c], new Span<float>(Floats(gradWeight), c));
            if (gradBias is not null) TensorPrimitives.Add(new Span<float>(Floats(gradBias), c), total[c..], new Span<float>(Floats(gradBias), c));
        }
    }

    /// <inheritdoc/>
    protected override unsafe void ResidualCore(Tensor output, Tensor x, Tensor branch, float lambda, float beta) =>
        ElementWise.For(_pool, output.ElementCount, new ResidualKernel(Floats(output), Floats(x), Floats(branch), lambda, beta));

    /// <inheritdoc/>
    protected override unsafe void ResidualBackwardCore(Tensor? gradX, Tensor? gradBranch, Tensor gradOutput, float lambda, float beta) =>
        ElementWise.For(_pool, gradOutput.ElementCount, new ResidualBackwardKernel(Floats(gradOutput),
            gradX is null ? null : Floats(gradX), gradBranch is null ? null : Floats(gradBranch), lambda, beta));

    /// <summary>How the rows [..., channels] of a tensor split into work chunks; see <see cref="MaxRowChunks"/>.</summary>
    private readonly struct RowChunks
    {
        public RowChunks(Tensor tensor)
        {
            Channels = tensor.Shape[-1];
            Total = (int)(tensor.ElementCount / Channels);
            Count = Math.Min(Total, Math.Clamp(MaxPartialFloats / (2 * Channels), 1, MaxRowChunks));
        }

        public readonly int Channels, Total, Count;

        /// <summary>Rows [start, end) of chunk <paramref name="chunk"/>.</summary>
        public (int Start, int End) Of(int chunk) => WorkerPool.Partition(chunk, Count, Total);
    }

    /// <summary>One row chunk of the forward: s = lambda x + beta branch, then the normalised, affine row.</summary>
    private unsafe struct LayerNormForwardJob : IVectorJob
    {
        public RowChunks Rows;
        public float* X, Branch, Residual, Output, Mean, Rstd, Weight, Bias;
        public float Lambda, Beta, Epsilon;

        public readonly void Execute<TWidth, TFloat, TDouble>(int chunk) where TWidth : IWidth<TFloat, TDouble>
        {
            int c = Rows.Channels;
            var (start, end) = Rows.Of(chunk);
            for (int r = start; r < end; r++)
            {
                long at = (long)r * c;
                float* input = X + at;
                if (Branch is not null)
                {
                    input = Residual + at;
                    RowKernels.Combine<TWidth, TFloat, TDouble>(input, X + at, Lambda, Branch + at, Beta, c);
                }
                // Two passes (mean, then squared deviations) rather than E[s^2] - mean^2, which cancels badly when |mean| >> std.
                float mean = RowKernels.Sum<TWidth, TFloat, TDouble>(input, c) / c;
                float rstd = 1f / MathF.Sqrt(RowKernels.SquaredDeviation<TWidth, TFloat, TDouble>(input, mean, c) / c + Epsilon);
                Normalize<TWidth, TFloat, TDouble>(Output + at, input, mean, rstd, Weight, Bias, c);
                Mean[r] = mean;
                Rstd[r] = rstd;
            }
        }
    }

    /// <summary>
    /// One row chunk of the backward. With xhat = (s - mean) rstd and g = gradNormOutput * weight, the layer-norm
    /// backward is ds = rstd (g - mean(g) - xhat mean(g xhat)); plus the gradient arriving at s directly.
    /// </summary>
    private unsafe struct LayerNormBackwardJob : IVectorJob
    {
        public RowChunks Rows;
        public float* GradX, GradBranch, GradNormOutput, GradResidual, Input, Mean, Rstd, Weight, Partials;
        public float LambdaX, Beta;

        public readonly void Execute<TWidth, TFloat, TDouble>(int chunk) where TWidth : IWidth<TFloat, TDouble>
        {
            int c = Rows.Channels;
            float* partialWeight = Partials is null ? null : Partials + 2L * chunk * c;
            if (partialWeight is not null) new Span<float>(partialWeight, 2 * c).Clear();
            var (start, end) = Rows.Of(chunk);
            for (int r = start; r < end; r++)
            {
                long at = (long)r * c;
                var (sumG, sumGXhat) = GradientSums<TWidth, TFloat, TDouble>(Input + at, GradNormOutput + at, Weight, Mean[r], Rstd[r], partialWeight, c);
                InputGradient<TWidth, TFloat, TDouble>(new RowGradient
                {
                    Input = Input + at, GradOutput = GradNormOutput + at, GradResidual = GradResidual is null ? null : GradResidual + at,
                    GradX = GradX is null ? null : GradX + at, GradBranch = GradBranch is null ? null : GradBranch + at,
                    Weight = Weight, Mean = Mean[r], Rstd = Rstd[r], MeanG = sumG / c, MeanGXhat = sumGXhat / c, LambdaX = LambdaX, Beta = Beta,
                }, c);
            }
        }
    }

    /// <summary><c>output = lambda * x + beta * branch</c> over one element chunk.</summary>
    private readonly unsafe struct ResidualKernel(float* output, float* x, float* branch, float lambda, float beta) : IRangeKernel
    {
        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble> =>
            RowKernels.Combine<TWidth, TFloat, TDouble>(output + start, x + start, lambda, branch + start, beta, length);
    }

    /// <summary><c>gradX += lambda * gradOutput</c>, <c>gradBranch += beta * gradOutput</c> over one element chunk (null gradients skipped).</summary>
    private readonly unsafe struct ResidualBackwardKernel(float* gradOutput, float* gradX, float* gradBranch, float lambda, float beta) : IRangeKernel
    {
        public void Run<TWidth, TFloat, TDouble>(long start, int length) where TWidth : IWidth<TFloat, TDouble>
        {
            if (gradX is not null) RowKernels.AddScaled<TWidth, TFloat, TDouble>(gradX + start, gradOutput + start, lambda, length);
            if (gradBranch is not null) RowKernels.AddScaled<TWidth, TFloat, TDouble>(gradBranch + start, gradOutput + start, beta, length);
        }
    }

    /// <summary><c>destination = (row - mean) * rstd * weight + bias</c>, weight and bias optional.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void Normalize<TWidth, TFloat, TDouble>(float* destination, float* row, float mean, float rstd, float* weight, float* bias, int count)
        where TWidth : IWidth<TFloat, TDouble>
    {
        var m = TWidth.Broadcast(mean);
        var r = TWidth.Broadcast(rstd);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
        {
            var y = TWidth.Multiply(TWidth.Subtract(TWidth.Load(row + j), m), r);
            if (weight is not null) y = TWidth.Multiply(y, TWidth.Load(weight + j));
            if (bias is not null) y = TWidth.Add(y, TWidth.Load(bias + j));
            TWidth.Store(y, destination + j);
        }
        for (; j < count; j++)
        {
            float y = (row[j] - mean) * rstd;
            if (weight is not null) y *= weight[j];
            if (bias is not null) y += bias[j];
            destination[j] = y;
        }
    }

    /// <summary>
    /// First backward pass over a row: returns <c>sum(g)</c> and <c>sum(g * xhat)</c> (lanes fixed by position, as in
    /// <see cref="RowKernels"/>), and when <paramref name="partialWeight"/> is given accumulates
    /// <c>gradOutput * xhat</c> into it and <c>gradOutput</c> into the gradBias partial that follows it.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe (float SumG, float SumGXhat) GradientSums<TWidth, TFloat, TDouble>(float* row, float* gradOutput, float* weight, float mean, float rstd,
        float* partialWeight, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var m = TWidth.Broadcast(mean);
        var r = TWidth.Broadcast(rstd);
        var sumG = TWidth.Broadcast(0f);
        var sumGXhat = sumG;
        float* partialBias = partialWeight + count;
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
        {
            var xhat = TWidth.Multiply(TWidth.Subtract(TWidth.Load(row + j), m), r);
            var dy = TWidth.Load(gradOutput + j);
            var g = weight is null ? dy : TWidth.Multiply(dy, TWidth.Load(weight + j));
            sumG = TWidth.Add(sumG, g);
            sumGXhat = TWidth.Fma(g, xhat, sumGXhat);
            if (partialWeight is null) continue;
            TWidth.Store(TWidth.Fma(dy, xhat, TWidth.Load(partialWeight + j)), partialWeight + j);
            TWidth.Store(TWidth.Add(TWidth.Load(partialBias + j), dy), partialBias + j);
        }
        float g0 = TWidth.Sum(sumG), gx0 = TWidth.Sum(sumGXhat);
        for (; j < count; j++)
        {
            float xhat = (row[j] - mean) * rstd, dy = gradOutput[j];
            float g = weight is null ? dy : dy * weight[j];
            g0 += g;
            gx0 = MathF.FusedMultiplyAdd(g, xhat, gx0);
            if (partialWeight is null) continue;
            partialWeight[j] = MathF.FusedMultiplyAdd(dy, xhat, partialWeight[j]);
            partialBias[j] += dy;
        }
        return (g0, gx0);
    }

    /// <summary>The operands of <see cref="InputGradient"/> for one row.</summary>
    private unsafe struct RowGradient
    {
        public float* Input, GradOutput, GradResidual, GradX, GradBranch, Weight;
        public float Mean, Rstd, MeanG, MeanGXhat, LambdaX, Beta;
    }

    /// <summary>Second backward pass: <c>ds = rstd (g - mean(g) - xhat mean(g xhat)) + gradResidual</c>;
    /// <c>gradX += lambdaX ds</c>, <c>gradBranch += beta ds</c>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void InputGradient<TWidth, TFloat, TDouble>(in RowGradient a, int count) where TWidth : IWidth<TFloat, TDouble>
    {
        var m = TWidth.Broadcast(a.Mean);
        var r = TWidth.Broadcast(a.Rstd);
        var meanG = TWidth.Broadcast(a.MeanG);
        // xhat * (-mean(g xhat)) has exactly the bits of (-xhat) * mean(g xhat): a sign flip is exact.
        var minusMeanGXhat = TWidth.Broadcast(-a.MeanGXhat);
        var lambdaX = TWidth.Broadcast(a.LambdaX);
        var beta = TWidth.Broadcast(a.Beta);
        int j = 0;
        for (; j <= count - TWidth.Lanes; j += TWidth.Lanes)
        {
            var xhat = TWidth.Multiply(TWidth.Subtract(TWidth.Load(a.Input + j), m), r);
            var dy = TWidth.Load(a.GradOutput + j);
            var g = a.Weight is null ? dy : TWidth.Multiply(dy, TWidth.Load(a.Weight + j));
            var ds = TWidth.Multiply(TWidth.Fma(xhat, minusMeanGXhat, TWidth.Subtract(g, meanG)), r);
            if (a.GradResidual is not null) ds = TWidth.Add(ds, TWidth.Load(a.GradResidual + j));
            if (a.GradX is not null) TWidth.Store(TWidth.Fma(ds, lambdaX, TWidth.Load(a.GradX + j)), a.GradX + j);
            if (a.GradBranch is not null) TWidth.Store(TWidth.Fma(ds, beta, TWidth.Load(a.GradBranch + j)), a.GradBranch + j);
        }
        for (; j < count; j++)
        {
            float xhat = (a.Input[j] - a.Mean) * a.Rstd, dy = a.GradOutput[j];
            float g = a.Weight is null ? dy : dy * a.Weight[j];
            float ds = MathF.FusedMultiplyAdd(-xhat, a.MeanGXhat, g - a.MeanG) * a.Rstd;
            if (a.GradResidual is not null) ds += a.GradResidual[j];
            if (a.GradX is not null) a.GradX[j] = MathF.FusedMultiplyAdd(ds, a.LambdaX, a.GradX[j]);
            if (a.GradBranch is not null) a.GradBranch[j] = MathF.FusedMultiplyAdd(ds, a.Beta, a.GradBranch[j]);
        }
    }
}
